"""COCO and Cityscapes panoptic files: the RGB id encoding, PNG reading, writers, read-back.

Both formats store one PNG per image whose pixels encode a segment id as
`id = R + 256 G + 256^2 B` (0 = void / unlabelled) and one JSON whose `annotations` list, per
image, the `segments_info` (`id`, `category_id`, `area`, `bbox` `[x, y, w, h]`, `iscrowd`).

- COCO (panopticapi): segment ids are colors: the category color for stuff and crowd, the
  category color jittered per instance for things (so the PNGs are readable pictures).
- Cityscapes (cityscapesScripts `createPanopticImgs.py`): segment id `category_id * 1000 +
  instance` for thing instances, `category_id` for stuff and crowd regions (`iscrowd=1`), with
  Cityscapes label ids as category ids; file names `<image_id>_gtFine_panoptic.png`.
"""

import contextlib
import ctypes
import io
import json
import os
import zlib

import numpy as np
from PIL import Image

try:  # libspng decodes panoptic PNGs about twice as fast as Pillow (see read_panoptic_png).
    import pyspng
except ImportError:  # platforms without a pyspng wheel (setup.py): Pillow reads everything.
    pyspng = None
try:  # zlib-ng inflates panoptic PNG data ~5x faster than zlib (see png_scanlines).
    from zlib_ng import zlib_ng as _inflater
except ImportError:
    import zlib as _inflater

from keras_axial.evaluation.panoptic_quality import gather
from keras_axial.evaluation.panoptic_quality import present_values
from keras_axial.evaluation.panoptic_quality import split_panoptic_ids
from keras_axial.visualization.colormaps import colormap
from keras_axial.visualization.colormaps import instance_colors
from keras_axial.visualization.dataset_description import dataset_info

MAX_SEGMENT_ID = 2**24 - 1


def _atomic_write(path, mode):
    # Imported on first write: `keras_axial.utils` pulls in Keras, which reading and evaluating
    # do not need.
    from keras_axial.utils.io import atomic_write

    return atomic_write(path, mode)


class PanopticFormatError(ValueError):
    """A panoptic JSON or PNG does not follow the format (the message names file and segment)."""


def rgb_to_id(rgb):
    """`R + 256 G + 256^2 B` of a uint8 `[..., 3]` array, as uint32 `[...]`."""
    rgb = np.asarray(rgb)
    if rgb.shape[-1:] != (3,):
        raise ValueError(f"Expected an [..., 3] RGB array. Received shape {rgb.shape}.")
    rgb = rgb.astype(np.uint32)
    return rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16)


def id_to_rgb(ids):
    """The inverse of `rgb_to_id`: uint8 `[..., 3]` from int ids in `[0, 2^24)`."""
    ids = np.asarray(ids, np.int64)
    if ids.size and (ids.min() < 0 or ids.max() > MAX_SEGMENT_ID):
        raise ValueError(
            f"Segment ids must lie in [0, {MAX_SEGMENT_ID}] to fit 24-bit RGB. "
            f"Received ids in [{ids.min()}, {ids.max()}]."
        )
    return np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)


class _ArrowSchema(ctypes.Structure):
    pass


_ArrowSchema._fields_ = [
    ("format", ctypes.c_char_p),
    ("name", ctypes.c_char_p),
    ("metadata", ctypes.c_char_p),
    ("flags", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowSchema))),
    ("dictionary", ctypes.c_void_p),
    ("release", ctypes.c_void_p),
    ("private_data", ctypes.c_void_p),
]


class _ArrowArray(ctypes.Structure):
    pass


_ArrowArray._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowArray))),
    ("dictionary", ctypes.c_void_p),
    ("release", ctypes.c_void_p),
    ("private_data", ctypes.c_void_p),
]

_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


class _ArrayInterface:
    __slots__ = ("__array_interface__",)


def _ids_from_pixel_memory(image, out=None):
    """Segment ids read straight from PIL's pixel memory, or None where that is not possible.

    PIL stores RGB(A) pixels as 4 bytes, so the uint32 view of its memory is
    `R + 256 G + 65536 B + 2^24 X`; masking 24 bits gives the ids with one pass. The memory is
    reached through Pillow's Arrow C data export (a stable ABI); this skips `tobytes`, which costs
    as much again as decoding the PNG.
    """
    try:
        schema_capsule, array_capsule = image.__arrow_c_array__()
    except (AttributeError, ValueError):  # Pillow < 11.2, or rows not in one memory block.
        return None
    schema = ctypes.cast(
        _capsule_pointer(schema_capsule, b"arrow_schema"), ctypes.POINTER(_ArrowSchema)
    ).contents
    array = ctypes.cast(
        _capsule_pointer(array_capsule, b"arrow_array"), ctypes.POINTER(_ArrowArray)
    ).contents
    width, height = image.size
    # Expected layout: a fixed-size list of 4 uint8 per pixel, one data buffer, no offset.
    if (
        schema.format != b"+w:4"
        or schema.n_children != 1
        or schema.children[0].contents.format != b"C"
        or array.length != width * height
        or array.offset != 0
        or array.n_children != 1
    ):
        return None
    child = array.children[0].contents
    if child.offset != 0 or child.n_buffers != 2 or not child.buffers[1]:
        return None
    view = _ArrayInterface()
    view.__array_interface__ = {
        "data": (child.buffers[1], True),
        "shape": (height, width),
        "typestr": "<u4",
        "version": 3,
    }
    # The capsules (and the image) stay alive until the masked copy exists.
    pixels = np.asarray(view)
    if out is not None:
        out = out.reshape(pixels.shape)
    return np.bitwise_and(pixels, np.uint32(MAX_SEGMENT_ID), out=out)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_header(data):
    """`(height, width)` of an 8-bit RGB or RGBA PNG, or None for anything else."""
    # The IHDR chunk comes first: width, height (big-endian uint32), bit depth, color type.
    if len(data) < 33 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        return None
    bit_depth, color_type = data[24], data[25]
    if bit_depth != 8 or color_type not in (2, 6):  # 2: RGB, 6: RGBA
        return None
    return int.from_bytes(data[20:24], "big"), int.from_bytes(data[16:20], "big")


def _decode_with_libspng(data, format, channels):
    """libspng's uint8 `[height, width, channels]` pixels of an 8-bit RGB or RGBA PNG, or None
    for anything else (palette and 16-bit files, files libspng rejects)."""
    header = _png_header(data)
    if header is None:
        return None
    if channels is None:
        channels = 3 if data[25] == 2 else 4
    try:
        pixels = pyspng.load(data, format=format)
    except (RuntimeError, ValueError):
        return None
    if pixels.shape != (*header, channels) or pixels.dtype != np.uint8:
        return None
    return pixels


def _ids_with_libspng(data, out=None):
    """Segment ids of an 8-bit RGB or RGBA PNG decoded by libspng, or None for anything else.

    Decoding is most of the folder evaluator's work (inflating and unfiltering two 640x480
    RGB images costs more than all of the PQ arithmetic); libspng does it in about half of
    Pillow's time. Pixels come out as RGBA, whose little-endian uint32 view is
    `R + 256 G + 65536 B + 2^24 A`: one mask gives the ids. Palette and 16-bit files, and files
    libspng rejects, return None so that the Pillow path reads them (or explains the error).
    """
    pixels = _decode_with_libspng(data, "RGBA", 4)
    if pixels is None:
        return None
    height, width = pixels.shape[:2]
    words = pixels.view("<u4").reshape(height, width)
    if out is None or out.dtype != np.uint32 or out.size != width * height:
        out = None
    else:
        out = out.reshape(height, width)
    return np.bitwise_and(words, np.uint32(MAX_SEGMENT_ID), out=out, dtype=np.uint32)


def png_scanlines(data):
    """The inflated, still filtered image data of an 8-bit, non-interlaced RGB or RGBA PNG.

    What the C pair counter of the COCO evaluator reads (it undoes the row filters while
    counting): decoding is most of PQ evaluation, and most of decoding is inflating, which
    zlib-ng does several times faster than the zlib built into the PNG decoders.

    Args:
        data: the bytes of a PNG file.

    Returns:
        `(scanlines, height, width, channels)`, `scanlines` holding `height` rows of a filter
        type byte and `width * channels` filtered bytes; or None for any other file (palette,
        16-bit, interlaced, not a PNG, a bad checksum, truncated or corrupt data), which
        `read_panoptic_png` reads or explains.
    """
    header = _png_header(data)
    # Compression, filter method and interlace bytes follow bit depth and color type; then the
    # CRC of the IHDR chunk.
    if header is None or data[26:29] != b"\0\0\0":
        return None
    if zlib.crc32(data[12:29]) != int.from_bytes(data[29:33], "big"):
        return None
    height, width = header
    channels = 3 if data[25] == 2 else 4
    view, position, parts = memoryview(data), 8, []
    while True:
        if position + 12 > len(data):
            return None  # no IEND: truncated
        length = int.from_bytes(data[position : position + 4], "big")
        end = position + 12 + length
        if end > len(data):
            return None
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            body = view[position + 4 : end - 4]  # type and data, which the CRC covers
            if zlib.crc32(body) != int.from_bytes(data[end - 4 : end], "big"):
                return None
            parts.append(body[4:])
        elif kind == b"IEND":
            break
        position = end
    expected = height * (1 + width * channels)
    stream = b"".join(parts)
    # Deflate expands at most ~1032x: a header promising more is corrupt (and must not make
    # the inflater allocate its size).
    if expected > 1100 * len(stream) + 4096:
        return None
    try:
        scanlines = _inflater.decompress(stream, bufsize=expected)
    except _inflater.error:
        return None
    if len(scanlines) != expected:
        return None
    return scanlines, height, width, channels


def _read_file(path):
    try:
        with open(path, "rb") as file:
            return file.read()
    except FileNotFoundError:
        raise FileNotFoundError(f"Panoptic PNG {path!r} does not exist.") from None


@contextlib.contextmanager
def _pillow_image(path, source):
    """The RGB or RGBA Pillow image of a panoptic PNG (palette files converted to RGB), loaded;
    format errors name `path`."""
    try:
        image = Image.open(source)
    except FileNotFoundError:
        raise FileNotFoundError(f"Panoptic PNG {path!r} does not exist.") from None
    except OSError as error:
        raise PanopticFormatError(f"{path!r} is not a readable image: {error}") from None
    with image:
        if image.mode not in ("RGB", "RGBA", "P"):
            raise PanopticFormatError(
                f"{path!r} has image mode {image.mode!r}; panoptic PNGs must be RGB "
                "(segment id = R + 256 G + 256^2 B)."
            )
        try:
            image.load()
            if image.mode == "P":
                image = image.convert("RGB")
        except OSError as error:
            raise PanopticFormatError(f"{path!r} could not be decoded: {error}") from None
        yield image


def read_panoptic_png(path, out=None):
    """Reads a panoptic PNG as segment ids.

    Args:
        path: PNG file (RGB, RGBA or palette).
        out: optional uint32 buffer with one element per pixel to write the ids into (saves
            the page faults of a fresh array when reading many files). Defaults to `None`.

    Returns:
        uint32 `[height, width]` segment ids (`R + 256 G + 256^2 B`).
    """
    path = os.fspath(path)
    source = path
    if pyspng is not None:
        data = _read_file(path)
        ids = _ids_with_libspng(data, out)
        if ids is not None:
            return ids
        source = io.BytesIO(data)  # Pillow reads the rest (palette, 16-bit, broken files).
    with _pillow_image(path, source) as image:
        width, height = image.size
        if out is not None and (out.dtype != np.uint32 or out.size != width * height):
            out = None  # not the right size for this image: use a new array
        ids = _ids_from_pixel_memory(image, out)
        if ids is None:
            ids = rgb_to_id(np.asarray(image)[..., :3])
    return ids


def read_panoptic_pixels(path):
    """Reads a panoptic PNG's pixel bytes, undecoded into ids (the fastest read).

    Args:
        path: PNG file (RGB, RGBA or palette).

    Returns:
        C-contiguous uint8 `[height, width, 3]` (RGB and palette files) or
        `[height, width, 4]` (RGBA files) array; segment id = `R + 256 G + 256^2 B` of the
        first three channels (`rgb_to_id`), alpha plays no part.
    """
    path = os.fspath(path)
    source = path
    if pyspng is not None:
        data = _read_file(path)
        pixels = _decode_with_libspng(data, None, None)
        if pixels is not None:
            return pixels
        source = io.BytesIO(data)
    with _pillow_image(path, source) as image:
        return np.ascontiguousarray(np.asarray(image), dtype=np.uint8)


# zlib levels 1-3 (no lazy matching) make streams that inflate ~30% faster than PIL's default
# level 6, for files ~1.6x larger (14 vs 8 KB for a 640x480 map): predictions are written once
# and decoded at every evaluation, so the writers default to 3.
DEFAULT_COMPRESS_LEVEL = 3


def write_panoptic_png(path, ids, compress_level=DEFAULT_COMPRESS_LEVEL):
    """Writes segment ids as an RGB PNG, atomically.

    Args:
        path: destination `.png` (its folder must exist).
        ids: int `[height, width]` segment ids in `[0, 2^24)`.
        compress_level: zlib level, 0-9. Defaults to `DEFAULT_COMPRESS_LEVEL` (3).
    """
    if compress_level not in range(10):
        raise ValueError(f"`compress_level` must be an int in 0..9. Received: {compress_level!r}")
    rgb = id_to_rgb(ids)
    with _atomic_write(path, "wb") as handle:
        Image.fromarray(rgb, "RGB").save(handle, format="PNG", compress_level=compress_level)


def _bounding_boxes(index, num_segments):
    # [x, y, width, height] per dense segment index, from which rows / columns it touches.
    height, width = index.shape
    rows = np.zeros((num_segments, height), bool)
    rows[index, np.arange(height)[:, None]] = True
    columns = np.zeros((num_segments, width), bool)
    columns[index, np.arange(width)[None, :]] = True
    top = rows.argmax(axis=1)
    bottom = height - 1 - rows[:, ::-1].argmax(axis=1)
    left = columns.argmax(axis=1)
    right = width - 1 - columns[:, ::-1].argmax(axis=1)
    return np.stack([left, top, right - left + 1, bottom - top + 1], axis=1)


class CocoPanopticWriter:
    """Writes panoptic label maps as COCO panoptic files (panopticapi format).

    Segment ids are colors: the category color for stuff and crowd, the category color jittered
    by the instance id for things (unique within each image), so the PNGs are readable pictures.

    Args:
        output_json: path of the JSON written by `close()` (its folder must exist).
        output_folder: folder for the PNGs (created if missing).
        dataset: dataset description (`DatasetSpec` or any object / dict with `class_names`,
            `thing_class_ids`, `label_divisor`, `ignore_label`, optional `colors` and
            `category_ids`), or a registered dataset name.
        category_ids: dataset category id per contiguous class (e.g. COCO's 1..200). Defaults to
            the dataset's `category_ids`, else the contiguous ids.
        compress_level: zlib level of the PNGs, 0-9. Defaults to 3 (decodes ~30% faster than
            PIL's default 6, for ~1.6x larger files).

    Example:
        >>> with CocoPanopticWriter("pred.json", "pred", "coco") as writer:
        ...     for image_id, panoptic in predictions:
        ...         writer.write(image_id, panoptic)
    """

    def __init__(
        self,
        output_json,
        output_folder,
        dataset,
        category_ids=None,
        compress_level=DEFAULT_COMPRESS_LEVEL,
    ):
        if compress_level not in range(10):
            raise ValueError(
                f"`compress_level` must be an int in 0..9. Received: {compress_level!r}"
            )
        self.compress_level = compress_level
        self.info = dataset_info(dataset)
        self.output_json = os.fspath(output_json)
        self.output_folder = os.fspath(output_folder)
        if category_ids is None:
            category_ids = self.info.category_ids or tuple(range(self.info.num_classes))
        category_ids = tuple(int(c) for c in category_ids)
        if len(category_ids) != self.info.num_classes or len(set(category_ids)) != len(
            category_ids
        ):
            raise ValueError(
                f"`category_ids` must give {self.info.num_classes} unique dataset category ids, "
                f"one per contiguous class. Received: {list(category_ids)}"
            )
        self.category_ids = category_ids
        self.class_colors = colormap(self.info)
        self._is_thing = np.zeros(self.info.num_classes, bool)
        self._is_thing[list(self.info.thing_class_ids)] = True
        json_folder = os.path.dirname(os.path.abspath(self.output_json))
        if not os.path.isdir(json_folder):
            raise FileNotFoundError(
                f"Cannot write {self.output_json!r}: its folder {json_folder!r} does not exist."
            )
        os.makedirs(self.output_folder, exist_ok=True)
        self.images = []
        self.annotations = []
        self._image_ids = set()
        self._closed = False

    def categories(self):
        """The JSON `categories`: `id`, `name`, `isthing`, `color` per class."""
        return [
            {
                "id": category_id,
                "name": name,
                "isthing": int(self._is_thing[class_id]),
                "color": [int(v) for v in self.class_colors[class_id]],
            }
            for class_id, (category_id, name) in enumerate(
                zip(self.category_ids, self.info.class_names)
            )
        ]

    def _default_file_names(self, image_id):
        stem = f"{image_id:012d}" if isinstance(image_id, (int, np.integer)) else str(image_id)
        return f"{stem}.png", f"{stem}.jpg"

    def _segment_ids(self, semantic, instance, is_crowd):
        colors = self.class_colors[semantic]
        jitter = self._is_thing[semantic] & (instance > 0)
        ids = rgb_to_id(colors).astype(np.int64)
        ids[jitter] = rgb_to_id(instance_colors(colors[jitter], instance[jitter]))
        used = set()
        for k in range(ids.size):
            salt = 0
            while ids[k] in used or ids[k] == 0:
                # Collision (two classes with one color, or a jitter landing on a taken color):
                # move to another deterministic color near the class color.
                salt += 1
                ids[k] = int(rgb_to_id(instance_colors(colors[k], instance[k], salt=salt)))
            used.add(int(ids[k]))
        return ids

    def write(self, image_id, panoptic, file_name=None, image_file_name=None):
        """Writes one image's PNG and records its annotation.

        Args:
            image_id: the image id (int or str) that matches predictions to ground truth.
            panoptic: int `[height, width]` label map (`class * label_divisor + instance`;
                instance 0 of a thing class is a crowd region, `iscrowd=1`).
            file_name: the PNG's name in `output_folder`. Defaults to the format's convention.
            image_file_name: the `file_name` of the `images` entry (the RGB image). Defaults to
                the format's convention.

        Returns:
            The annotation dict (`image_id`, `file_name`, `segments_info`).
        """
        if self._closed:
            raise ValueError(f"The writer of {self.output_json!r} is already closed.")
        if isinstance(image_id, np.integer):
            image_id = int(image_id)
        if not isinstance(image_id, (int, str)) or isinstance(image_id, bool):
            raise TypeError(f"`image_id` must be an int or a str. Received: {image_id!r}")
        if image_id in self._image_ids:
            raise ValueError(f"Image id {image_id!r} was already written to {self.output_json!r}.")
        panoptic = np.asarray(panoptic)
        if panoptic.ndim != 2:
            raise ValueError(
                f"`panoptic` for image {image_id!r} must be [height, width]. "
                f"Received shape {panoptic.shape}."
            )
        default_png, default_image = self._default_file_names(image_id)
        file_name = file_name or default_png
        image_file_name = image_file_name or default_image

        values = present_values(panoptic, f"panoptic map of image {image_id!r}")
        index = gather(panoptic, values, np.arange(values.size))
        semantic, instance, void = split_panoptic_ids(
            values,
            self.info.num_classes,
            self.info.label_divisor,
            self.info.ignore_label,
            f"panoptic map of image {image_id!r}",
        )
        is_crowd = self._is_thing[np.where(void, 0, semantic)] & (instance == 0) & ~void
        segment_ids = np.zeros(values.size, np.int64)
        keep = ~void
        segment_ids[keep] = self._segment_ids(semantic[keep], instance[keep], is_crowd[keep])
        areas = np.bincount(index.reshape(-1), minlength=values.size)
        boxes = _bounding_boxes(index, values.size)
        write_panoptic_png(
            os.path.join(self.output_folder, file_name), segment_ids[index], self.compress_level
        )

        segments_info = [
            {
                "id": int(segment_ids[k]),
                "category_id": self.category_ids[semantic[k]],
                "area": int(areas[k]),
                "bbox": [int(v) for v in boxes[k]],
                "iscrowd": int(is_crowd[k]),
            }
            for k in np.flatnonzero(keep)
        ]
        height, width = panoptic.shape
        self.images.append(
            {"id": image_id, "width": width, "height": height, "file_name": image_file_name}
        )
        annotation = {"image_id": image_id, "file_name": file_name, "segments_info": segments_info}
        self.annotations.append(annotation)
        self._image_ids.add(image_id)
        return annotation

    def close(self):
        """Writes the JSON (atomically); the writer accepts no more images."""
        if self._closed:
            return
        content = {
            "images": self.images,
            "annotations": self.annotations,
            "categories": self.categories(),
        }
        with _atomic_write(self.output_json, "w") as handle:
            json.dump(content, handle)
        self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        # On an error the JSON is not written: a folder without its JSON is visibly incomplete.
        if exc_type is None:
            self.close()
        else:
            self._closed = True
        return False


class CityscapesPanopticWriter(CocoPanopticWriter):
    """Writes panoptic label maps as Cityscapes panoptic files (cityscapesScripts format).

    Segment ids are `category_id * 1000 + instance` for thing instances and `category_id` for
    stuff and crowd regions; the JSON has `images`, `annotations` and `categories` like the
    output of `createPanopticImgs.py`, and `evalPanopticSemanticLabeling.py` (or this package's
    COCO evaluator) reads it.

    Args:
        output_json: path of the JSON written by `close()` (its folder must exist).
        output_folder: folder for the PNGs (created if missing).
        dataset: dataset description (see `CocoPanopticWriter`); for the `"cityscapes"` preset
            its `category_ids` are the Cityscapes label ids (road = 7, ..., bicycle = 33).
        category_ids: category id per contiguous class. Defaults to the dataset's
            `category_ids`, else the contiguous ids (the `--use-train-id` convention).
        compress_level: zlib level of the PNGs, 0-9. Defaults to 3.

    Example:
        >>> with CityscapesPanopticWriter("pred.json", "pred", "cityscapes") as writer:
        ...     writer.write("frankfurt_000000_000294", panoptic)
    """

    INSTANCE_DIVISOR = 1000

    def __init__(
        self,
        output_json,
        output_folder,
        dataset,
        category_ids=None,
        compress_level=DEFAULT_COMPRESS_LEVEL,
    ):
        super().__init__(output_json, output_folder, dataset, category_ids, compress_level)
        bad = [c for c in self.category_ids if c < 1 or c * 1000 + 999 > MAX_SEGMENT_ID]
        if bad:
            raise ValueError(
                "Cityscapes segment ids are category_id * 1000 + instance, so category ids must "
                f"lie in [1, {MAX_SEGMENT_ID // 1000 - 1}] (0 would be void). Received: {bad}"
            )

    def _default_file_names(self, image_id):
        return f"{image_id}_gtFine_panoptic.png", f"{image_id}_leftImg8bit.png"

    def _segment_ids(self, semantic, instance, is_crowd):
        category = np.asarray(self.category_ids, np.int64)[semantic]
        things = self._is_thing[semantic] & (instance > 0)
        too_large = things & (instance >= self.INSTANCE_DIVISOR)
        if too_large.any():
            raise ValueError(
                "Cityscapes ids hold instance ids below 1000. Received instance ids "
                f"{instance[too_large][:5].tolist()}."
            )
        return np.where(things, category * self.INSTANCE_DIVISOR + instance, category)


def load_panoptic_json(path):
    """Reads a panoptic JSON; errors name the file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Panoptic JSON {path!r} does not exist.")
    with open(path, encoding="utf-8") as handle:
        try:
            content = json.load(handle)
        except json.JSONDecodeError as error:
            raise PanopticFormatError(f"{path!r} is not valid JSON: {error}") from None
    if not isinstance(content, dict) or not isinstance(content.get("annotations"), list):
        raise PanopticFormatError(
            f"{path!r} is not a panoptic JSON: expected an object with an 'annotations' list."
        )
    return content


def read_panoptic_annotation(png_path, segments_info, dataset, category_ids=None):
    """Reads one image of a COCO / Cityscapes panoptic folder back as a label map.

    Things get instance ids `1, 2, ...` per class in `segments_info` order (the writers list
    segments by increasing panoptic id, so consecutive instance ids come back unchanged); crowd
    segments become instance 0; pixels of unlisted id 0 become void.

    Args:
        png_path: the image's panoptic PNG.
        segments_info: its JSON `segments_info` list.
        dataset: dataset description (see `CocoPanopticWriter`).
        category_ids: dataset category id per contiguous class (as for the writers).

    Returns:
        int32 `[height, width]` panoptic label map.
    """
    info = dataset_info(dataset)
    if category_ids is None:
        category_ids = info.category_ids or tuple(range(info.num_classes))
    class_of_category = {int(c): k for k, c in enumerate(category_ids)}
    is_thing = set(info.thing_class_ids)
    ids = read_panoptic_png(png_path)
    png_path = os.fspath(png_path)
    lookup_ids = [0]
    lookup_values = [info.ignore_label * info.label_divisor]
    next_instance = {}
    for segment in segments_info:
        category = segment["category_id"]
        if category not in class_of_category:
            raise PanopticFormatError(
                f"{png_path!r}: segment {segment['id']} has category_id {category}, which is not "
                f"one of the dataset's category ids {sorted(class_of_category)}."
            )
        class_id = class_of_category[category]
        instance = 0
        if class_id in is_thing and not segment.get("iscrowd", 0):
            instance = next_instance.get(class_id, 0) + 1
            next_instance[class_id] = instance
            if instance >= info.label_divisor:
                raise PanopticFormatError(
                    f"{png_path!r}: class {info.class_names[class_id]!r} has more than "
                    f"{info.label_divisor - 1} instances, more than label_divisor allows."
                )
        lookup_ids.append(int(segment["id"]))
        lookup_values.append(class_id * info.label_divisor + instance)
    lookup_ids = np.asarray(lookup_ids, np.int64)
    order = np.argsort(lookup_ids)
    sorted_ids = lookup_ids[order]
    position = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
    unlisted = sorted_ids[position] != ids
    if unlisted.any():
        raise PanopticFormatError(
            f"{png_path!r} contains segment ids {np.unique(ids[unlisted])[:5].tolist()} that its "
            "segments_info does not list."
        )
    return np.asarray(lookup_values, np.int32)[order][position]
