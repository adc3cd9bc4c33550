"""The synthetic panoptic dataset: the embedded default that `make demo` and the tests train on.

From a seed, it draws images a small model can learn on a CPU in minutes, written in the COCO
panoptic format (so they go through exactly the converters and checks real datasets go through):

- 3 stuff classes, told apart by texture: `stripes` (warm sinusoidal stripes, random direction and
  period), `checkerboard` (cool squares, random cell size and rotation), `speckle` (green noise).
  They tile the background as randomly placed Voronoi regions.
- 3 thing classes, told apart by shape: `disk` (an ellipse), `rectangle`, `triangle`, with random
  size, color and rotation; 0 to `max_instances` (10) per image, overlapping (later ones occlude)
  and sometimes touching; some are cut by the image border.
- Crowd: in about a quarter of the images, a cluster of small shapes of one thing class is one
  segment with `iscrowd: 1`.
- Void: in about a third of the images, a noise patch or an image frame has segment id 0.
- Image sizes vary (`min_size` .. `max_size` per side).

Image `i` of split `s` depends only on `(seed, s, i)`, not on how many images are drawn.

    python -m keras_axial.data.synthetic --output_dir=/tmp/synthetic --num_images=64 --seed=0 \
        [--split=train] [--num_val_images=16] [--tfrecord_dir=/tmp/synthetic_tfrecords]

writes `images/<split>/*.png`, `annotations/panoptic_<split>.json` and
`annotations/panoptic_<split>/*.png` under `--output_dir` (and split `val` too with
`--num_val_images`), and with `--tfrecord_dir` converts them to TFRecords
(`get_dataset_spec("synthetic")`).
"""

import json
import os
import pathlib
import sys
import zlib

import numpy as np
from PIL import Image

from keras_axial.data.dataset_spec import SYNTHETIC_PANOPTIC
from keras_axial.data.panoptic_format import segment_ids_to_rgb

_SPEC = SYNTHETIC_PANOPTIC
_STRIPES, _CHECKERBOARD = _SPEC.class_id("stripes"), _SPEC.class_id("checkerboard")
_DISK, _RECTANGLE, _TRIANGLE = (_SPEC.class_id(n) for n in ("disk", "rectangle", "triangle"))
# Below this many visible pixels an occluded instance is dropped (its pixels become void).
_MIN_VISIBLE_AREA = 12


def _rng(seed, split, index):
    return np.random.default_rng([seed, zlib.crc32(split.encode("utf-8")), index])


def _jitter(rng, color, amount=25):
    return np.clip(np.asarray(color, np.float32) + rng.uniform(-amount, amount, 3), 0, 255)


def _stuff_texture(rng, class_id, yy, xx):
    """A `[H, W, 3]` float texture of stuff class `class_id`."""
    if class_id == _STRIPES:
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(6, 14)
        phase = np.cos(angle) * xx + np.sin(angle) * yy
        mix = (0.5 + 0.5 * np.sin(2 * np.pi * phase / period))[..., None]
        light, dark = _jitter(rng, (235, 170, 60)), _jitter(rng, (150, 70, 30))
        return mix * light + (1 - mix) * dark
    if class_id == _CHECKERBOARD:
        angle = rng.uniform(0, np.pi / 2)
        cell = rng.uniform(4, 10)
        u = np.cos(angle) * xx + np.sin(angle) * yy
        v = -np.sin(angle) * xx + np.cos(angle) * yy
        check = ((np.floor(u / cell) + np.floor(v / cell)) % 2)[..., None]
        light, dark = _jitter(rng, (140, 170, 220)), _jitter(rng, (40, 60, 110))
        return check * light + (1 - check) * dark
    base = _jitter(rng, (80, 150, 60))
    return base + rng.normal(0, 28, yy.shape + (3,))


def _shape_mask(rng, class_id, cy, cx, radius, yy, xx):
    angle = rng.uniform(0, 2 * np.pi)
    dy, dx = yy - cy, xx - cx
    u = np.cos(angle) * dx + np.sin(angle) * dy
    v = -np.sin(angle) * dx + np.cos(angle) * dy
    if class_id == _DISK:
        ratio = rng.uniform(0.7, 1.0)
        return (u / radius) ** 2 + (v / (radius * ratio)) ** 2 <= 1.0
    if class_id == _RECTANGLE:
        ratio = rng.uniform(0.4, 1.0)
        return (np.abs(u) <= radius) & (np.abs(v) <= radius * ratio)
    corners = [
        (radius * np.cos(a), radius * np.sin(a))
        for a in np.deg2rad([90, 210, 330]) + rng.uniform(-0.25, 0.25, 3)
    ]
    inside = np.ones(yy.shape, bool)
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1]):
        # Counter-clockwise vertices: inside is left of every edge.
        inside &= (x1 - x0) * (v - y0) - (y1 - y0) * (u - x0) >= 0
    return inside


def render_synthetic_example(seed=0, index=0, split="train", min_size=96, max_size=160,
                             max_instances=10):
    """Draws image `index` of a split.

    Args:
        seed: dataset seed. Defaults to `0`.
        index: image index. Defaults to `0`.
        split: split name (splits differ for the same seed). Defaults to `"train"`.
        min_size: smallest image side. Defaults to `96`.
        max_size: largest image side. Defaults to `160`.
        max_instances: most thing instances per image. Defaults to `10`.

    Returns:
        `(image, segment_map, segments_info)`: uint8 `[H, W, 3]`, uint32 `[H, W]` COCO segment ids
        (0 = void) and the COCO `segments_info` list (`category_id` in the spec's category ids).
    """
    if not 8 <= min_size <= max_size:
        raise ValueError(
            f"Expected 8 <= min_size <= max_size. Received: min_size={min_size}, "
            f"max_size={max_size}"
        )
    rng = _rng(seed, split, index)
    height, width = (int(v) for v in rng.integers(min_size, max_size + 1, 2))
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    image = np.zeros((height, width, 3), np.float32)
    label = np.zeros((height, width), np.int64)  # index into `segments`, -1 = void
    segments = []  # (class_id, iscrowd)

    # Stuff: Voronoi cells, each painted with the texture of a random stuff class.
    num_cells = int(rng.integers(2, 5))
    seeds = rng.uniform([0, 0], [height, width], (num_cells, 2))
    cell = np.argmin((yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2, -1)
    stuff_segment = {}
    for c in range(num_cells):
        class_id = int(rng.choice(_SPEC.stuff_class_ids))
        mask = cell == c
        image[mask] = _stuff_texture(rng, class_id, yy, xx)[mask]
        if class_id not in stuff_segment:
            stuff_segment[class_id] = len(segments)
            segments.append((class_id, 0))
        label[mask] = stuff_segment[class_id]

    # Crowd: a cluster of small shapes of one thing class, labelled as a single segment.
    if rng.random() < 0.25:
        class_id = int(rng.choice(_SPEC.thing_class_ids))
        cy, cx = rng.uniform([0, 0], [height, width])
        color = rng.uniform(30, 230, 3)
        crowd = np.zeros((height, width), bool)
        for _ in range(int(rng.integers(4, 9))):
            oy, ox = rng.normal(0, 10, 2)
            crowd |= _shape_mask(rng, class_id, cy + oy, cx + ox, rng.uniform(3, 6), yy, xx)
        if crowd.any():
            image[crowd] = _jitter(rng, color, 15)
            label[crowd] = len(segments)
            segments.append((class_id, 1))

    # Things: random shapes; some touch the previous one; later ones occlude earlier ones.
    previous = None
    for _ in range(int(rng.integers(0, max_instances + 1))):
        class_id = int(rng.choice(_SPEC.thing_class_ids))
        radius = rng.uniform(5, max(6.0, min(height, width) / 4))
        if previous is not None and rng.random() < 0.3:
            direction = rng.uniform(0, 2 * np.pi)
            distance = previous[2] + radius
            cy = previous[0] + distance * np.sin(direction)
            cx = previous[1] + distance * np.cos(direction)
        else:
            margin = radius / 2
            cy, cx = rng.uniform([-margin, -margin], [height + margin, width + margin])
        mask = _shape_mask(rng, class_id, cy, cx, radius, yy, xx)
        if not mask.any():
            continue
        color = rng.uniform(0, 255, 3)
        shading = 1 + 0.15 * ((yy - cy) / max(radius, 1))[..., None]
        image[mask] = (color * shading + rng.normal(0, 4, (height, width, 3)))[mask]
        label[mask] = len(segments)
        segments.append((class_id, 0))
        previous = (cy, cx, radius)

    # Void: a noise patch or a frame around the image.
    draw = rng.random()
    if draw < 0.15:
        y0, x0 = rng.integers(0, [height - 8, width - 8])
        h, w = rng.integers(6, 24, 2)
        patch = (slice(y0, y0 + h), slice(x0, x0 + w))
        image[patch] = rng.uniform(0, 255, image[patch].shape)
        label[patch] = -1
    elif draw < 0.3:
        frame = int(rng.integers(2, 5))
        border = np.ones((height, width), bool)
        border[frame:-frame, frame:-frame] = False
        image[border] = 0
        label[border] = -1

    # Drop what is almost fully occluded; give the rest random unique COCO segment ids.
    areas = np.bincount(label[label >= 0], minlength=len(segments))
    segment_ids = rng.choice(2**24 - 1, size=len(segments), replace=False) + 1
    segment_map = np.zeros((height, width), np.uint32)
    segments_info = []
    for segment, (class_id, iscrowd) in enumerate(segments):
        mask = label == segment
        if areas[segment] == 0:
            continue
        if areas[segment] < _MIN_VISIBLE_AREA and _SPEC.is_thing(class_id):
            continue  # stays void
        segment_map[mask] = segment_ids[segment]
        ys, xs = np.nonzero(mask)
        segments_info.append(
            {
                "id": int(segment_ids[segment]),
                "category_id": _SPEC.category_ids[class_id],
                "iscrowd": int(iscrowd),
                "area": int(areas[segment]),
                "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)],
            }
        )
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return image, segment_map, segments_info


def generate_synthetic_dataset(output_dir, num_images, *, split="train", seed=0, min_size=96,
                               max_size=160, max_instances=10):
    """Writes a split of the synthetic dataset in the COCO panoptic format.

    Files appear atomically: the image and PNG folders are built under temporary names and the
    JSON is written last, so an interrupted run leaves the split absent, never half-written.

    Args:
        output_dir: destination folder (created if missing).
        num_images: number of images (>= 1).
        split: split name. Defaults to `"train"`.
        seed: defaults to `0`.
        min_size, max_size, max_instances: see `render_synthetic_example`.

    Returns:
        dict with `"panoptic_json"`, `"label_dir"` and `"image_dir"` paths, as the converters take
        them.

    Example:
        >>> paths = generate_synthetic_dataset("/tmp/synthetic", 8, seed=0)
        >>> convert_custom_panoptic("/tmp/synthetic_tfrecords", spec="synthetic", **paths)
    """
    from keras_axial.utils.io import atomic_directory
    from keras_axial.utils.io import atomic_write

    if not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f"`num_images` must be an int >= 1. Received: num_images={num_images!r}")
    output_dir = pathlib.Path(output_dir)
    (output_dir / "images").mkdir(parents=True, exist_ok=True)
    (output_dir / "annotations").mkdir(parents=True, exist_ok=True)
    paths = {
        "panoptic_json": str(output_dir / "annotations" / f"panoptic_{split}.json"),
        "label_dir": str(output_dir / "annotations" / f"panoptic_{split}"),
        "image_dir": str(output_dir / "images" / split),
    }
    images, annotations = [], []
    with atomic_directory(paths["image_dir"]) as image_dir, atomic_directory(
        paths["label_dir"]
    ) as label_dir:
        for index in range(num_images):
            image, segment_map, segments_info = render_synthetic_example(
                seed, index, split, min_size, max_size, max_instances
            )
            name = f"{index:06d}.png"
            Image.fromarray(image).save(image_dir / name)
            Image.fromarray(segment_ids_to_rgb(segment_map)).save(label_dir / name)
            images.append(
                {"id": index, "file_name": name, "height": image.shape[0], "width": image.shape[1]}
            )
            annotations.append(
                {"image_id": index, "file_name": name, "segments_info": segments_info}
            )
    with atomic_write(paths["panoptic_json"], "w") as handle:
        json.dump(
            {"images": images, "annotations": annotations,
             "categories": _SPEC.to_coco_categories()},
            handle,
        )
    return paths


def generate_synthetic_tfrecords(output_dir, *, splits=None, seed=0, coco_dir=None, min_size=96,
                                 max_size=160, max_instances=10, verbose=False):
    """Generates synthetic splits and converts them to a keras-axial TFRecord folder.

    Args:
        output_dir: the TFRecord folder (readable by `build_panoptic_dataset`).
        splits: `{split: num_images}`. Defaults to `{"train": 32, "val": 8}`.
        seed: defaults to `0`.
        coco_dir: where to keep the COCO-format files. Defaults to `None`: a temporary folder,
            deleted afterwards.
        min_size, max_size, max_instances: see `render_synthetic_example`.
        verbose: progress bars. Defaults to `False`.

    Returns:
        `output_dir` as a string.
    """
    import tempfile

    from keras_axial.data.convert_custom import convert_custom_panoptic

    splits = {"train": 32, "val": 8} if splits is None else dict(splits)
    with tempfile.TemporaryDirectory() as temporary:
        root = coco_dir or temporary
        for split, num_images in splits.items():
            paths = generate_synthetic_dataset(
                root, num_images, split=split, seed=seed, min_size=min_size, max_size=max_size,
                max_instances=max_instances,
            )
            convert_custom_panoptic(
                output_dir, split=split, spec=_SPEC, treat_crowd_as_ignore=False,
                verbose=verbose, num_shards=min(num_images, 4), **paths,
            )
    return os.fspath(output_dir)


def _define_flags(flag_values):
    from absl import flags

    flags.DEFINE_string(
        "output_dir", None, "Folder for the COCO-format files.", flag_values=flag_values,
        required=True,
    )
    flags.DEFINE_integer("num_images", 64, "Images in the split.", flag_values=flag_values,
                         lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Dataset seed.", flag_values=flag_values)
    flags.DEFINE_string("split", "train", "Split name.", flag_values=flag_values)
    flags.DEFINE_integer(
        "num_val_images", 0, "Also write this many images as split 'val'.",
        flag_values=flag_values, lower_bound=0,
    )
    flags.DEFINE_integer("min_size", 96, "Smallest image side.", flag_values=flag_values)
    flags.DEFINE_integer("max_size", 160, "Largest image side.", flag_values=flag_values)
    flags.DEFINE_integer("max_instances", 10, "Most instances per image.", flag_values=flag_values)
    flags.DEFINE_string(
        "tfrecord_dir", None, "Also convert the split to TFRecords in this folder.",
        flag_values=flag_values,
    )


def main(argv=None):
    from keras_axial.data._cli import parse_flags

    f = parse_flags(argv, _define_flags, __doc__)
    splits = {f.split: f.num_images}
    if f.num_val_images:
        if f.split == "val":
            raise SystemExit("--num_val_images writes split 'val'; choose another --split.")
        splits["val"] = f.num_val_images
    for split, num_images in splits.items():
        paths = generate_synthetic_dataset(
            f.output_dir, num_images, split=split, seed=f.seed, min_size=f.min_size,
            max_size=f.max_size, max_instances=f.max_instances,
        )
        print(f"Wrote {num_images} synthetic images: {paths['panoptic_json']}")
        if f.tfrecord_dir:
            from keras_axial.data.convert_custom import convert_custom_panoptic

            convert_custom_panoptic(f.tfrecord_dir, split=split, spec=_SPEC, **paths)
            print(f"Wrote TFRecords of split {split!r} to {f.tfrecord_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
