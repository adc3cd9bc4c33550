"""Panoptic quality of COCO-format panoptic folders (JSON + PNGs), in parallel.

Results equal COCO panopticapi's `pq_compute` on the same files, with clear errors on malformed
input instead of wrong numbers or a traceback from a worker. Command line:

    python -m keras_axial.evaluation.coco_panoptic --gt_json G --gt_folder GF \\
        --pred_json P --pred_folder PF [--output_json OUT] [--num_workers N]

prints `{"All": {"pq", "sq", "rq", "n"}, "Things": ..., "Stuff": ..., "per_class":
{category_id: {"pq", "sq", "rq"}}}` (fractions) as JSON on stdout, a table on stderr, and writes
the JSON to `--output_json`. Exit status 1 and an `error:` line naming the file (and segment) on
malformed input.

Differences from panopticapi, none of which changes a result on well-formed files: ground-truth
segment areas are counted in the PNG rather than read from the JSON `area`; a PNG id that the
JSON does not list, a ground-truth segment of an unknown category, a segment id listed twice, an
id 0 listed as a segment, and a duplicated prediction image id are errors (panopticapi silently
skips or miscounts them).
"""

import argparse
import ctypes
import json
import multiprocessing
import os
import sys

import numpy as np

from keras_axial.evaluation.panoptic_format import MAX_SEGMENT_ID
from keras_axial.evaluation.panoptic_format import PanopticFormatError
from keras_axial.evaluation.panoptic_format import _atomic_write
from keras_axial.evaluation.panoptic_format import load_panoptic_json
from keras_axial.evaluation.panoptic_format import _read_file
from keras_axial.evaluation.panoptic_format import png_scanlines
from keras_axial.evaluation.panoptic_format import read_panoptic_pixels
from keras_axial.evaluation.panoptic_format import read_panoptic_png
from keras_axial.evaluation.panoptic_quality import PanopticStatistics
from keras_axial.evaluation.panoptic_quality import image_statistics
from keras_axial.evaluation.panoptic_quality import intersection_matrix

try:  # The C pair counter (setup.py builds it where a compiler exists); numpy otherwise.
    from keras_axial.evaluation import _pair_counts
except ImportError:
    _pair_counts = None

# Dense segment index per 24-bit segment id: one table per process, filled for the segments of the
# image at hand and cleared after, so mapping a PNG to indices is a single gather. Index 0 is kept
# for ids the JSON does not list (the table's resting value), 1 for void (id 0), 2.. for the
# listed segments; a zero-filled table is allocated lazily by the OS, so only the pages of ids
# that occur are ever touched.
_MAX_SEGMENTS_PER_IMAGE = 2**15 - 3
_lookup_table = None
# Images per task sent to a worker: small enough to balance two workers over a few hundred
# images, large enough that pickling the annotations costs nothing.
_CHUNK_SIZE = 8


def _segment_lookup_table():
    global _lookup_table
    if _lookup_table is None:
        # int64 so that gathered indices feed np.bincount without a conversion copy; 128 MiB of
        # address space, of which only the pages of ids that occur get memory.
        _lookup_table = np.zeros(MAX_SEGMENT_ID + 1, np.int64)
    return _lookup_table


# Per-process output buffers of the gathers, reused across images: fresh multi-megabyte arrays
# come from mmap and cost page faults on every image (as much as the gathers themselves).
_buffers = {}


def _buffer(name, size, dtype=np.int64):
    buffer = _buffers.get(name)
    if buffer is None or buffer.size < size:
        buffer = _buffers[name] = np.empty(size, dtype)
    return buffer[:size]


def _read_ids(side, png_path):
    # The ids array of the previous image of this side is overwritten (it is no longer needed);
    # a PNG of another size gets a fresh array, which the next image then reuses.
    ids = read_panoptic_png(png_path, _buffers.get(side))
    _buffers[side] = ids.reshape(-1)
    return ids


class _Context:
    """What every worker needs besides the image pairs (pickled once per chunk)."""

    def __init__(self, gt_json, pred_json, gt_folder, pred_folder, class_of_category):
        self.gt_json = gt_json
        self.pred_json = pred_json
        self.gt_folder = gt_folder
        self.pred_folder = pred_folder
        self.class_of_category = class_of_category


def _parse_segments(annotation, json_path, context, is_ground_truth):
    """Dense-index tables of one image's `segments_info` (index 0 = void)."""
    where = f"{json_path!r}, image {annotation.get('image_id')!r}"
    segments = annotation.get("segments_info")
    if not isinstance(segments, list):
        raise PanopticFormatError(f"{where}: 'segments_info' must be a list. Received: {segments!r:.100}")
    if len(segments) > _MAX_SEGMENTS_PER_IMAGE:
        raise PanopticFormatError(
            f"{where}: {len(segments)} segments; at most {_MAX_SEGMENTS_PER_IMAGE} are supported."
        )
    ids = np.empty(len(segments), np.int64)
    classes = np.empty(len(segments) + 1, np.intp)
    classes[0] = -1
    crowd = np.zeros(len(segments) + 1, bool)
    crowd_region = np.zeros(len(segments) + 1, bool)
    last_crowd_of_class = {}
    seen = set()
    for k, segment in enumerate(segments):
        if not isinstance(segment, dict) or "id" not in segment or "category_id" not in segment:
            raise PanopticFormatError(
                f"{where}: segment #{k} needs 'id' and 'category_id'. Received: {segment!r:.200}"
            )
        segment_id = segment["id"]
        if not isinstance(segment_id, int) or not 0 < segment_id <= MAX_SEGMENT_ID:
            raise PanopticFormatError(
                f"{where}: segment id {segment_id!r} is not an int in [1, {MAX_SEGMENT_ID}] "
                "(0 is void)."
            )
        if segment_id in seen:
            raise PanopticFormatError(f"{where}: segment id {segment_id} is listed twice.")
        seen.add(segment_id)
        category = segment["category_id"]
        if category not in context.class_of_category:
            raise PanopticFormatError(
                f"{where}: segment {segment_id} has category_id {category!r}, which is not one of "
                f"the {len(context.class_of_category)} categories of {context.gt_json!r}."
            )
        ids[k] = segment_id
        classes[k + 1] = context.class_of_category[category]
        if is_ground_truth and segment.get("iscrowd", 0) == 1:
            crowd[k + 1] = True
            last_crowd_of_class[classes[k + 1]] = k + 1
    # panopticapi lets only the last listed crowd segment of each category excuse false
    # positives; kept so that results match it exactly.
    crowd_region[list(last_crowd_of_class.values())] = True
    return ids, classes, crowd, crowd_region


def _gather_listed(segment_ids_map, listed_ids, multiplier, out):
    """`multiplier * index` per pixel into `out`: 0 for unlisted ids, 1 for void, 2.. for
    `listed_ids`."""
    lookup = _segment_lookup_table()
    lookup[0] = multiplier
    lookup[listed_ids] = np.arange(2, listed_ids.size + 2, dtype=np.int64) * multiplier
    try:
        # mode="clip": with `out`, the default "raise" buffers the result; ids are < 2^24 anyway.
        return np.take(lookup, segment_ids_map.reshape(-1), out=out, mode="clip")
    finally:
        lookup[listed_ids] = 0
        lookup[0] = 0


def _counted_pairs(gt_png, pred_png, gt_ids, pred_ids):
    """The intersection matrix (row / column 0: unlisted ids, 1: void) by the C counter, with
    the two image shapes (a zero matrix when they differ).

    8-bit RGB(A) PNGs, the usual kind, are counted from their inflated data (the counter undoes
    the PNG filters row by row); other files from their decoded pixels.
    """
    intersections = np.zeros((gt_ids.size + 2, pred_ids.size + 2), np.int64)
    scanlines = [png_scanlines(_read_file(png)) for png in (gt_png, pred_png)]
    if scanlines[0] is not None and scanlines[1] is not None:
        (gt_lines, gt_height, gt_width, gt_channels), (pred_lines, *pred_shape, pred_channels) = (
            scanlines
        )
        shapes = (gt_height, gt_width), tuple(pred_shape)
        if shapes[0] == shapes[1]:
            try:
                _pair_counts.count_scanline_pairs(
                    gt_lines, gt_channels, pred_lines, pred_channels, gt_width, gt_height,
                    gt_ids, pred_ids, intersections,
                )
            except ValueError as error:  # an unknown filter type in one of the files
                png = gt_png if str(error).startswith("gt_") else pred_png
                raise PanopticFormatError(f"{png!r} could not be decoded: {error}") from None
        return intersections, shapes
    gt_pixels, pred_pixels = read_panoptic_pixels(gt_png), read_panoptic_pixels(pred_png)
    shapes = gt_pixels.shape[:2], pred_pixels.shape[:2]
    if shapes[0] == shapes[1]:
        _pair_counts.count_pairs(
            gt_pixels, gt_pixels.shape[2], pred_pixels, pred_pixels.shape[2], gt_ids, pred_ids,
            intersections,
        )
    return intersections, shapes


def _gathered_pairs(gt_png, pred_png, gt_ids, pred_ids):
    """The intersection matrix by numpy gathers and np.bincount, with the two image shapes."""
    gt_map = _read_ids("gt_ids", gt_png)
    pred_map = _read_ids("pred_ids", pred_png)
    # One more index on each side than segments + void: 0 collects unlisted ids.
    num_gt, num_pred = gt_ids.size + 2, pred_ids.size + 2
    shapes = gt_map.shape, pred_map.shape
    if shapes[0] != shapes[1]:
        return np.zeros((num_gt, num_pred), np.int64), shapes
    gt_part = _gather_listed(gt_map, gt_ids, num_pred, _buffer("gt", gt_map.size))
    pred_part = _gather_listed(pred_map, pred_ids, 1, _buffer("pred", pred_map.size))
    intersections = intersection_matrix(
        gt_part, pred_part, num_gt, num_pred, out=_buffer("pairs", gt_map.size)
    )
    return intersections, shapes


def _pair_statistics(gt_annotation, pred_annotation, context, num_classes):
    image_id = gt_annotation["image_id"]
    gt_png = os.path.join(context.gt_folder, gt_annotation["file_name"])
    pred_png = os.path.join(context.pred_folder, pred_annotation["file_name"])
    gt_ids, gt_classes, gt_crowd, gt_crowd_region = _parse_segments(
        gt_annotation, context.gt_json, context, is_ground_truth=True
    )
    pred_ids, pred_classes, _, _ = _parse_segments(
        pred_annotation, context.pred_json, context, is_ground_truth=False
    )
    count = _counted_pairs if _pair_counts is not None else _gathered_pairs
    intersections, shapes = count(gt_png, pred_png, gt_ids, pred_ids)
    if shapes[0] != shapes[1]:
        raise PanopticFormatError(
            f"Image {image_id!r}: prediction {pred_png!r} is {shapes[1][1]}x{shapes[1][0]} "
            f"(WxH) but ground truth {gt_png!r} is {shapes[0][1]}x{shapes[0][0]}."
        )
    for unlisted_pixels, listed, png, json_path in (
        (intersections[0].sum(), gt_ids, gt_png, context.gt_json),
        (intersections[:, 0].sum(), pred_ids, pred_png, context.pred_json),
    ):
        if unlisted_pixels:  # read again to name the ids (an error is worth the time)
            present = np.unique(read_panoptic_png(png))
            unlisted = present[(present != 0) & ~np.isin(present, listed)]
            raise PanopticFormatError(
                f"{png!r} contains segment ids {unlisted[:10].tolist()} that {json_path!r} "
                f"does not list for image {image_id!r} (0, void, is the only id that needs no "
                "entry)."
            )
    intersections = intersections[1:, 1:]
    absent = np.flatnonzero(intersections[:, 1:].sum(axis=0) == 0)
    if absent.size:
        raise PanopticFormatError(
            f"{context.pred_json!r} lists segments {pred_ids[absent][:10].tolist()} for image "
            f"{image_id!r} that its PNG {pred_png!r} does not contain."
        )
    return image_statistics(
        intersections, gt_classes, gt_crowd, pred_classes, num_classes, gt_crowd_region
    )


def _chunk_statistics(pairs, context, num_classes):
    statistics = PanopticStatistics(num_classes)
    for gt_annotation, pred_annotation in pairs:
        statistics += _pair_statistics(gt_annotation, pred_annotation, context, num_classes)
    return statistics


def _chunk_statistics_star(arguments):
    return _chunk_statistics(*arguments)


def _match_annotations(gt_content, pred_content, gt_json, pred_json):
    predictions = {}
    for k, annotation in enumerate(pred_content["annotations"]):
        if not isinstance(annotation, dict) or "image_id" not in annotation:
            raise PanopticFormatError(f"{pred_json!r}: annotation #{k} has no 'image_id'.")
        if "file_name" not in annotation:
            raise PanopticFormatError(
                f"{pred_json!r}: the annotation of image {annotation['image_id']!r} has no "
                "'file_name'."
            )
        if annotation["image_id"] in predictions:
            raise PanopticFormatError(
                f"{pred_json!r}: image {annotation['image_id']!r} is annotated twice."
            )
        predictions[annotation["image_id"]] = annotation
    pairs = []
    for k, annotation in enumerate(gt_content["annotations"]):
        if not isinstance(annotation, dict) or "image_id" not in annotation:
            raise PanopticFormatError(f"{gt_json!r}: annotation #{k} has no 'image_id'.")
        image_id = annotation["image_id"]
        if "file_name" not in annotation:
            raise PanopticFormatError(
                f"{gt_json!r}: the annotation of image {image_id!r} has no 'file_name'."
            )
        if image_id not in predictions:
            raise PanopticFormatError(
                f"{pred_json!r} has no prediction for image {image_id!r} (ground truth "
                f"{annotation['file_name']!r} in {gt_json!r})."
            )
        pairs.append((annotation, predictions[image_id]))
    return pairs


def _categories(gt_content, gt_json):
    categories = gt_content.get("categories")
    if not isinstance(categories, list) or not categories:
        raise PanopticFormatError(f"{gt_json!r} has no 'categories' list.")
    for k, category in enumerate(categories):
        if not isinstance(category, dict) or "id" not in category or "isthing" not in category:
            raise PanopticFormatError(
                f"{gt_json!r}: category #{k} needs 'id' and 'isthing'. Received: {category!r:.200}"
            )
    ids = [category["id"] for category in categories]
    if len(set(ids)) != len(ids):
        raise PanopticFormatError(f"{gt_json!r}: category ids repeat: {ids}")
    return ids, [category["isthing"] == 1 for category in categories]


def _keep_freed_memory():
    """Pool worker initializer: glibc keeps freed megabyte blocks for reuse.

    Each image's inflated data is a fresh ~1 MB bytes object; glibc serves blocks of that size
    with mmap and unmaps them when freed, so every image pays for page faults and zeroing
    again (as much time as inflating it). Raising the mmap and trim thresholds (to 32 MiB and
    128 MiB) makes it reuse the heap instead. A worker process is ours to tune; the calling
    process is left alone.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)  # glibc's maximum
    mallopt(m_trim_threshold, 128 << 20)


def _start_method():
    # fork is the cheapest start, but forking a process whose other threads hold locks (TensorFlow,
    # JAX) can deadlock the child; there, pay for forkserver.
    methods = multiprocessing.get_all_start_methods()
    threaded = any(name in sys.modules for name in ("tensorflow", "jax", "torch"))
    if "fork" in methods and not threaded:
        return "fork"
    return "forkserver" if "forkserver" in methods else "spawn"


def evaluate_coco_panoptic(
    gt_json, pred_json, gt_folder=None, pred_folder=None, num_workers=None
):
    """Panoptic quality of a COCO panoptic prediction folder against its ground truth.

    Args:
        gt_json: ground-truth JSON (`annotations`, `categories`).
        pred_json: prediction JSON (`annotations`; an entry per ground-truth image).
        gt_folder: folder of the ground-truth PNGs. Defaults to `gt_json` without `.json`.
        pred_folder: folder of the predicted PNGs. Defaults to `pred_json` without `.json`.
        num_workers: processes to use. Defaults to `os.cpu_count()`; 1 evaluates in this
            process. Workers start by fork, or by forkserver when TensorFlow, JAX or PyTorch
            is loaded here (forking their threads is unsafe); like any non-fork start, that
            needs the calling script's entry point under `if __name__ == "__main__":`.

    Returns:
        `{"All": {"pq", "sq", "rq", "n"}, "Things": {...}, "Stuff": {...},
        "per_class": {category_id: {"pq", "sq", "rq"}}}` with fractions; equal to panopticapi's
        `pq_compute` on well-formed files.

    Raises:
        FileNotFoundError: a JSON, folder or PNG is missing.
        PanopticFormatError: (a `ValueError`) malformed input; the message names the file,
            image and segment.

    Example:
        >>> result = evaluate_coco_panoptic("panoptic_val2017.json", "predictions.json",
        ...                                 "panoptic_val2017", "predictions")
        >>> result["All"]["pq"]
    """
    gt_json, pred_json = os.fspath(gt_json), os.fspath(pred_json)
    gt_folder = os.fspath(gt_folder) if gt_folder is not None else gt_json.rsplit(".json", 1)[0]
    pred_folder = (
        os.fspath(pred_folder) if pred_folder is not None else pred_json.rsplit(".json", 1)[0]
    )
    for folder, role in ((gt_folder, "ground-truth"), (pred_folder, "prediction")):
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"The {role} PNG folder {folder!r} does not exist.")
    gt_content = load_panoptic_json(gt_json)
    pred_content = load_panoptic_json(pred_json)
    category_ids, is_thing = _categories(gt_content, gt_json)
    class_of_category = {category: k for k, category in enumerate(category_ids)}
    pairs = _match_annotations(gt_content, pred_content, gt_json, pred_json)
    context = _Context(gt_json, pred_json, gt_folder, pred_folder, class_of_category)
    num_classes = len(category_ids)

    if num_workers is None:
        num_workers = os.cpu_count() or 1
    if not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"`num_workers` must be a positive int. Received: {num_workers!r}")
    # Chunks do not depend on the number of workers and are summed in order, so the result is
    # the same to the last bit however many workers run.
    chunks = [
        (pairs[start : start + _CHUNK_SIZE], context, num_classes)
        for start in range(0, len(pairs), _CHUNK_SIZE)
    ]
    num_workers = min(num_workers, len(chunks))
    statistics = PanopticStatistics(num_classes)
    if num_workers <= 1:
        global _lookup_table
        try:
            for chunk in chunks:
                statistics += _chunk_statistics_star(chunk)
        finally:
            _lookup_table = None  # not worth keeping between calls
            _buffers.clear()
    else:
        pool_context = multiprocessing.get_context(_start_method())
        with pool_context.Pool(num_workers, initializer=_keep_freed_memory) as pool:
            for chunk_result in pool.imap(_chunk_statistics_star, chunks):
                statistics += chunk_result
    return statistics.summarize(category_ids, is_thing)


def format_table(result):
    """A text table of PQ / SQ / RQ (in %) and class counts for All, Things and Stuff."""
    lines = [f"{'':10s}| {'PQ':>6s} {'SQ':>6s} {'RQ':>6s} {'N':>5s}", "-" * 38]
    for name in ("All", "Things", "Stuff"):
        row = result[name]
        lines.append(
            f"{name:10s}| {100 * row['pq']:6.2f} {100 * row['sq']:6.2f} {100 * row['rq']:6.2f} "
            f"{row['n']:5d}"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_axial.evaluation.coco_panoptic",
        description="Panoptic quality (PQ, SQ, RQ) of COCO-format panoptic predictions, "
        "equal to COCO panopticapi's pq_compute.",
    )
    parser.add_argument("--gt_json", required=True, help="ground-truth panoptic JSON")
    parser.add_argument(
        "--gt_folder", help="ground-truth PNG folder (default: gt_json without .json)"
    )
    parser.add_argument("--pred_json", required=True, help="predicted panoptic JSON")
    parser.add_argument(
        "--pred_folder", help="predicted PNG folder (default: pred_json without .json)"
    )
    parser.add_argument("--output_json", help="also write the results to this JSON file")
    parser.add_argument(
        "--num_workers", type=int, default=None, help="processes (default: all CPU cores)"
    )
    args = parser.parse_args(argv)
    try:
        result = evaluate_coco_panoptic(
            args.gt_json, args.pred_json, args.gt_folder, args.pred_folder, args.num_workers
        )
        text = json.dumps(result, indent=2)
        if args.output_json:
            with _atomic_write(args.output_json, "w") as handle:
                handle.write(text + "\n")
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(format_table(result), file=sys.stderr)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
