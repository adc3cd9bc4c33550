"""Images for `export.verify`, the TFLite calibration and the latency benchmark."""

import glob
import pathlib

import numpy as np

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm")


def _expand(spec, flag):
    paths = []
    for item in (part.strip() for part in str(spec).split(",")):
        if not item:
            continue
        path = pathlib.Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(
                    f"{flag}: folder {item!r} holds no image ({', '.join(IMAGE_SUFFIXES)})."
                )
            paths.extend(found)
        elif any(char in item for char in "*?["):
            found = sorted(pathlib.Path(p) for p in glob.glob(item))
            if not found:
                raise FileNotFoundError(f"{flag}: pattern {item!r} matches no file.")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        else:
            raise FileNotFoundError(f"{flag}: {item!r} is neither a file, a folder nor a glob.")
    if not paths:
        raise ValueError(f"{flag} names no image. Received: {spec!r}")
    return paths


def load_images(spec, flag="--images"):
    """Reads RGB images as uint8 `[height, width, 3]` arrays.

    Args:
        spec: comma-separated files, folders (their images) and glob patterns.
        flag: the flag name used in error messages. Defaults to `"--images"`.

    Returns:
        A list of `(path, array)` pairs.
    """
    from PIL import Image

    images = []
    for path in _expand(spec, flag):
        try:
            with Image.open(path) as image:
                images.append((str(path), np.asarray(image.convert("RGB"), dtype=np.uint8)))
        except OSError as error:
            raise ValueError(f"{flag}: cannot read {str(path)!r} as an image: {error}") from error
    return images


def parse_sizes(text, flag="--sizes"):
    """`"65x97,129"` -> `[(65, 97), (129, 129)]`."""
    sizes = []
    for item in (part.strip() for part in str(text).split(",")):
        if not item:
            continue
        try:
            values = [int(v) for v in item.lower().split("x")]
        except ValueError:
            values = []
        if len(values) == 1:
            values = values * 2
        if len(values) != 2 or min(values) < 1:
            raise ValueError(
                f"{flag}: {item!r} is not a size. Expected HEIGHTxWIDTH or SIZE, e.g. 65x97."
            )
        sizes.append(tuple(values))
    if not sizes:
        raise ValueError(f"{flag} names no size. Received: {text!r}")
    return sizes


def synthetic_images(count, size, seed=0):
    """`count` images of the built-in synthetic panoptic dataset, cropped to `size`.

    Textured stuff regions and thing shapes (keras_axial.data.synthetic), so that a network
    sees image-like statistics (calibration, verification) rather than noise.

    Returns:
        A list of `(name, uint8 array [height, width, 3])` pairs.
    """
    from keras_axial.data.synthetic import render_synthetic_example

    height, width = size
    side = max(height, width, 8)
    images = []
    for index in range(count):
        image, _, _ = render_synthetic_example(
            seed=seed, index=index, split="export", min_size=side, max_size=side
        )
        images.append((f"synthetic-{index}-{height}x{width}", image[:height, :width]))
    return images


def batches(images, batch_sizes):
    """Groups images of equal size into batches of each requested size.

    Images of a size are taken in order and cyclically, so every size runs at every batch
    size even with fewer images than the batch size.

    Args:
        images: `(name, array)` pairs.
        batch_sizes: e.g. `(1, 3)`.

    Yields:
        `(names, array [batch, height, width, 3])`.
    """
    groups = {}
    for name, image in images:
        groups.setdefault(image.shape, []).append((name, image))
    for shape in sorted(groups):
        group = groups[shape]
        for batch_size in batch_sizes:
            count = max(batch_size, len(group) // batch_size * batch_size)
            for start in range(0, count, batch_size):
                chosen = [group[(start + i) % len(group)] for i in range(batch_size)]
                yield [n for n, _ in chosen], np.stack([img for _, img in chosen])
