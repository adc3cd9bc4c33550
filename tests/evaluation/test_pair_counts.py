"""The C pair counter of the COCO folder evaluator, against numpy and the PNG decoders."""

import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from keras_axial.evaluation import PanopticFormatError
from keras_axial.evaluation import coco_panoptic
from keras_axial.evaluation import evaluate_coco_panoptic
from keras_axial.evaluation import id_to_rgb
from keras_axial.evaluation import read_panoptic_png
from keras_axial.evaluation import rgb_to_id
from keras_axial.evaluation import panoptic_format
from keras_axial.evaluation.panoptic_format import png_scanlines
from keras_axial.evaluation.panoptic_format import read_panoptic_pixels

from panoptic_test_data import built_pair_counter as _extension


def _filter_rows(raw, filters, bpp):
    """PNG-filters decoded rows (uint8 [H, W * bpp]) with the given filter type per row (a type
    above 4, invalid, stores the row unfiltered)."""
    rows = raw.astype(np.int16)
    prior = np.zeros_like(rows)
    prior[1:] = rows[:-1]
    left = np.zeros_like(rows)
    left[:, bpp:] = rows[:, :-bpp]
    up_left = np.zeros_like(rows)
    up_left[1:, bpp:] = rows[:-1, :-bpp]
    pa, pb, pc = np.abs(prior - up_left), np.abs(left - up_left), np.abs(left + prior - 2 * up_left)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prior, up_left))
    predictors = [0 * rows, left, prior, (left + prior) // 2, paeth]
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    for y, kind in enumerate(filters):
        out[y, 0] = kind
        out[y, 1:] = (rows[y] - predictors[kind if kind < 5 else 0][y]) % 256
    return out


def _chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def encode_png(pixels, filters, idat_parts=3):
    """An 8-bit RGB / RGBA PNG of `pixels` with a chosen filter type per row, its image data
    split over several IDAT chunks (a reference encoder independent of Pillow and libspng)."""
    height, width, channels = pixels.shape
    filtered = _filter_rows(pixels.reshape(height, -1), filters, channels).tobytes()
    stream = zlib.compress(filtered, 6)
    cuts = np.linspace(0, len(stream), idat_parts + 1).astype(int)
    header = struct.pack(">IIBBBBB", width, height, 8, 2 if channels == 3 else 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + b"".join(_chunk(b"IDAT", stream[a:b]) for a, b in zip(cuts[:-1], cuts[1:]))
        + _chunk(b"IEND", b"")
    )


def _pixels(ids, channels, rng):
    rgb = id_to_rgb(ids)
    if channels == 3:
        return np.ascontiguousarray(rgb)
    return np.dstack([rgb, rng.integers(0, 256, ids.shape, dtype=np.uint8)])


def _random_ids(rng, shape, palette):
    """Blocky maps (runs, as in segment maps) with scattered single pixels of other ids."""
    blocks = rng.choice(palette, size=(shape[0] // 3 + 1, shape[1] // 4 + 1))
    ids = np.repeat(np.repeat(blocks, 3, axis=0), 4, axis=1)[: shape[0], : shape[1]]
    speckle = rng.random(shape) < 0.05
    ids[speckle] = rng.choice(palette, size=speckle.sum())
    return ids


def _reference_counts(gt_ids_map, pred_ids_map, gt_listed, pred_listed):
    """(len + 2) x (len + 2) counts: index 0 unlisted, 1 void, k + 2 the k-th listed id."""

    def index(ids_map, listed):
        lookup = {0: 1, **{int(i): k + 2 for k, i in enumerate(listed)}}
        return np.vectorize(lambda v: lookup.get(int(v), 0))(ids_map)

    counts = np.zeros((len(gt_listed) + 2, len(pred_listed) + 2), np.int64)
    np.add.at(counts, (index(gt_ids_map, gt_listed), index(pred_ids_map, pred_listed)), 1)
    return counts


@pytest.mark.parametrize("gt_channels,pred_channels", [(3, 3), (3, 4), (4, 3), (4, 4)])
def test_counts_from_png_data_equal_numpy(tmp_path, gt_channels, pred_channels):
    extension = _extension()
    rng = np.random.default_rng(gt_channels * 10 + pred_channels)
    height, width = 29, 37
    palette = np.array([0, 1, 255, 256, 65535, 65536, 2**24 - 1, 123456, 7777777, 42])
    gt_map, pred_map = (_random_ids(rng, (height, width), palette) for _ in range(2))
    # Some ids of each map are not listed (index 0), 0 is void (index 1).
    gt_listed = np.array([1, 256, 2**24 - 1, 7777777, 42, 999], np.int64)
    pred_listed = np.array([65535, 1, 123456, 255, 65536], np.int64)
    expected = _reference_counts(gt_map, pred_map, gt_listed, pred_listed)

    files = {}
    for name, ids, channels in (("gt", gt_map, gt_channels), ("pred", pred_map, pred_channels)):
        pixels = _pixels(ids, channels, rng)
        filters = [y % 5 for y in range(height)]  # every filter type, next to every other
        files[name] = tmp_path / f"{name}.png"
        files[name].write_bytes(encode_png(pixels, filters))
        # The reference encoder writes what libspng / Pillow decode to the same pixels.
        assert (read_panoptic_png(files[name]) == ids).all()
        assert (read_panoptic_pixels(files[name]) == pixels).all()

    (gt_lines, h, w, c_gt), (pred_lines, _, _, c_pred) = (
        png_scanlines(files[k].read_bytes()) for k in ("gt", "pred")
    )
    assert (h, w, c_gt, c_pred) == (height, width, gt_channels, pred_channels)
    counts = np.zeros_like(expected)
    extension.count_scanline_pairs(
        gt_lines, c_gt, pred_lines, c_pred, w, h, gt_listed, pred_listed, counts
    )
    np.testing.assert_array_equal(counts, expected)

    counts = np.zeros_like(expected)
    gt_pixels, pred_pixels = read_panoptic_pixels(files["gt"]), read_panoptic_pixels(files["pred"])
    extension.count_pairs(
        gt_pixels, gt_channels, pred_pixels, pred_channels, gt_listed, pred_listed, counts
    )
    np.testing.assert_array_equal(counts, expected)

    # The numpy path of the evaluator gives the same matrix.
    counts, shapes = coco_panoptic._gathered_pairs(files["gt"], files["pred"], gt_listed, pred_listed)
    np.testing.assert_array_equal(counts, expected)
    counts, shapes = coco_panoptic._counted_pairs(files["gt"], files["pred"], gt_listed, pred_listed)
    np.testing.assert_array_equal(counts, expected)
    assert shapes == ((height, width), (height, width))


@pytest.mark.parametrize("channels", [3, 4])
def test_every_filter_type_decodes_noise(channels):
    # Random bytes make every branch of the Paeth and Average predictors occur (ties
    # included); the prediction side stores the same pixels unfiltered, so any decoding error
    # on the filtered side moves pixels off the diagonal.
    extension = _extension()
    rng = np.random.default_rng(channels)
    height, width = 40, 50
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    pixels[5:9] = pixels[4]  # and some repeated rows
    ids = rgb_to_id(pixels[..., :3]).astype(np.int64)
    listed = np.unique(ids[ids > 0])
    filtered = png_scanlines(encode_png(pixels, [(y // 2) % 5 for y in range(height)]))
    raw = png_scanlines(encode_png(pixels, [0] * height))
    counts = np.zeros((listed.size + 2, listed.size + 2), np.int64)
    extension.count_scanline_pairs(
        filtered[0], channels, raw[0], channels, width, height, listed, listed, counts
    )
    expected = np.zeros_like(counts)
    index = np.searchsorted(listed, ids) + 2
    index[ids == 0] = 1
    np.add.at(expected, (index, index), 1)
    np.testing.assert_array_equal(counts, expected)


def test_counter_rejects_bad_arguments():
    extension = _extension()
    pixels = np.zeros((2, 3, 3), np.uint8)
    ids = np.array([5], np.int64)
    out = np.zeros((3, 3), np.int64)
    with pytest.raises(ValueError, match="same number of pixels"):
        extension.count_pairs(pixels, 3, np.zeros((2, 2, 3), np.uint8), 3, ids, ids, out)
    with pytest.raises(ValueError, match="3 or 4"):
        extension.count_pairs(pixels, 2, pixels, 3, ids, ids, out)
    with pytest.raises(ValueError, match=r"out must hold 3 x 3"):
        extension.count_pairs(pixels, 3, pixels, 3, ids, ids, np.zeros((3, 2), np.int64))
    with pytest.raises(ValueError, match=r"gt_ids\[0\] = 0"):
        extension.count_pairs(pixels, 3, pixels, 3, np.array([0], np.int64), ids, out)
    with pytest.raises(ValueError, match=r"pred_ids\[0\] = 16777216"):
        extension.count_pairs(pixels, 3, pixels, 3, ids, np.array([2**24], np.int64), out)
    with pytest.raises(TypeError, match="writable"):
        extension.count_pairs(pixels, 3, pixels, 3, ids, ids, bytes(72))
    lines = bytes(2 * (1 + 9))
    with pytest.raises(ValueError, match="gt_scanlines must hold 2 rows of 1 \\+ 9 bytes"):
        extension.count_scanline_pairs(lines[:-1], 3, lines, 3, 3, 2, ids, ids, out)
    with pytest.raises(ValueError, match="Invalid image size"):
        extension.count_scanline_pairs(lines, 3, lines, 3, 0, 2, ids, ids, out)
    bad_filter = bytearray(lines)
    bad_filter[10] = 5  # row 1 of the prediction
    with pytest.raises(ValueError, match="pred_scanlines: row 1 has an unknown PNG filter type"):
        extension.count_scanline_pairs(lines, 3, bytes(bad_filter), 3, 3, 2, ids, ids, out)
    out = np.zeros((3, 3), np.int64)  # (the failed call left partial counts in the last one)
    extension.count_scanline_pairs(lines, 3, lines, 3, 3, 2, ids, ids, out)
    assert out[1, 1] == 6 and out.sum() == 6  # all void


def test_png_scanlines_leaves_other_files_to_the_decoders(tmp_path):
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 2**24, size=(6, 5))
    rgb = id_to_rgb(ids)
    good = encode_png(np.ascontiguousarray(rgb), [4] * 6)
    scanlines, height, width, channels = png_scanlines(good)
    assert (height, width, channels, len(scanlines)) == (6, 5, 3, 6 * 16)
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png")
    data = bytearray(good)
    data[28] = 1  # the interlace byte: Adam7
    bad_crc = bytearray(good)
    bad_crc[-20] ^= 1  # inside the last IDAT chunk
    bad_header_crc = bytearray(good)
    bad_header_crc[30] ^= 1  # the IHDR CRC
    huge = bytearray(good)
    huge[16:24] = struct.pack(">II", 100_000, 100_000)  # 30 GB promised by ~100 bytes
    huge[29:33] = struct.pack(">I", zlib.crc32(bytes(huge[12:29])))
    for other in (
        (tmp_path / "p.png").read_bytes(),
        bytes(data),
        bytes(bad_crc),
        bytes(bad_header_crc),
        bytes(huge),
        good[:-30],  # truncated
        b"not a png at all, but long enough to have a header",
    ):
        assert png_scanlines(other) is None


def test_palette_and_rgba_files_give_the_same_results(folders_copy, counter):
    paths, original = folders_copy
    # Re-save every ground-truth PNG as a palette PNG and every prediction as RGBA: neither is
    # read from its inflated data; the results do not change.
    for folder, mode in ((paths["gt_folder"], "P"), (paths["pred_folder"], "RGBA")):
        for png in sorted(folder.glob("*.png")):
            image = Image.open(png).convert("RGB")
            if mode == "P":
                image = image.convert("P", palette=Image.Palette.ADAPTIVE)
            else:
                image = image.convert("RGBA")
            image.save(png)
            assert (png_scanlines(png.read_bytes()) is None) == (mode == "P")
    assert evaluate_coco_panoptic(**{k: str(v) for k, v in paths.items()}, num_workers=1) == original


def test_unknown_filter_type_names_the_file(folders_copy, counter):
    paths, _ = folders_copy
    png = sorted(paths["pred_folder"].glob("*.png"))[3]
    ids = read_panoptic_png(png)
    filters = [1] * ids.shape[0]
    png.write_bytes(encode_png(np.ascontiguousarray(id_to_rgb(ids)), filters))
    assert (read_panoptic_png(png) == ids).all()
    # Same file with filter type 6 in row 2: valid checksums, invalid image data.
    data = encode_png(np.ascontiguousarray(id_to_rgb(ids)), filters[:2] + [6] + filters[3:])
    png.write_bytes(data)
    with pytest.raises(PanopticFormatError, match=png.name):
        evaluate_coco_panoptic(**{k: str(v) for k, v in paths.items()}, num_workers=1)


@pytest.fixture
def folders_copy(coco_folders, tmp_path):
    """A private copy of the generated folders as pathlib paths, and their original result."""
    paths, _ = coco_folders
    copy = {}
    for key, path in paths.items():
        target = tmp_path / path.rsplit("/", 1)[-1]
        (shutil.copytree if key.endswith("folder") else shutil.copy)(path, target)
        copy[key] = target
    original = evaluate_coco_panoptic(**paths, num_workers=1)
    return copy, original


def test_unlisted_ids_are_named_with_either_counter(folders_copy, counter):
    paths, _ = folders_copy
    png = sorted(paths["gt_folder"].glob("*.png"))[1]
    ids = read_panoptic_png(png)
    ids[:2, :3] = 4242
    panoptic_format.write_panoptic_png(png, ids)
    with pytest.raises(PanopticFormatError, match=r"\[4242\]"):
        evaluate_coco_panoptic(**{k: str(v) for k, v in paths.items()}, num_workers=1)
