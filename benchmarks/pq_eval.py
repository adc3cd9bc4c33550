"""Speed of the panoptic-quality evaluators on generated COCO panoptic folders.

Generates `--num_images` ground-truth / prediction pairs of `--height` x `--width` panoptic maps
(about `--segments` segments each: stuff regions, thing instances, a crowd region in some images,
void boundaries; predictions with moved boundaries and some relabelled segments), writes them in
COCO panoptic format (JSON + PNG; ground truth at zlib level 6 like COCO's own files, predictions
at the writer's default level) to a temporary folder, and times:

- `evaluate_coco_panoptic` (the folder evaluator, PNG decoding included) with `--num_workers`
  processes and with 1;
- the streaming `PanopticQuality` metric on the same label maps in memory (no PNG decoding);
- COCO panopticapi's `pq_compute` (if installed; it uses every core), for reference; its result
  is also checked against ours.

Usage (from the repository root):

    python benchmarks/pq_eval.py --num_images 500 [--json PATH]
"""

import argparse
import contextlib
import io
import json
import multiprocessing
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_axial.evaluation import CocoPanopticWriter  # noqa: E402
from keras_axial.evaluation import PanopticQuality  # noqa: E402
from keras_axial.evaluation import evaluate_coco_panoptic  # noqa: E402
from keras_axial.evaluation.panoptic_format import DEFAULT_COMPRESS_LEVEL  # noqa: E402

LABEL_DIVISOR = 256
IGNORE_LABEL = 255
# A COCO-like label space: 80 things then 53 stuff classes.
NUM_THINGS, NUM_CLASSES = 80, 133
DATASET = {
    "class_names": [f"class_{k}" for k in range(NUM_CLASSES)],
    "thing_class_ids": list(range(NUM_THINGS)),
    "label_divisor": LABEL_DIVISOR,
    "ignore_label": IGNORE_LABEL,
}


def _voronoi(centers, scales, height, width):
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    distance = (
        (yy[..., None] - centers[:, 0]) ** 2 + (xx[..., None] - centers[:, 1]) ** 2
    ) * scales
    order = np.argsort(distance, axis=-1)[..., :2]
    nearest = np.take_along_axis(distance, order, axis=-1)
    return order[..., 0], np.sqrt(nearest[..., 1]) - np.sqrt(nearest[..., 0])


def generate_pair(rng, height, width, segments):
    """One ground-truth / prediction pair of panoptic label maps."""
    count = max(2, int(rng.poisson(segments)))
    centers = rng.uniform([0, 0], [height, width], size=(count, 2)).astype(np.float32)
    scales = rng.uniform(0.3, 3.0, size=count).astype(np.float32)
    num_stuff = max(1, count // 3)
    labels = np.empty(count, np.int64)
    labels[:num_stuff] = rng.integers(NUM_THINGS, NUM_CLASSES, num_stuff) * LABEL_DIVISOR
    thing_classes = rng.integers(0, NUM_THINGS, count - num_stuff)
    labels[num_stuff:] = thing_classes * LABEL_DIVISOR + np.arange(1, count - num_stuff + 1)
    if rng.random() < 0.3:
        labels[-1] = thing_classes[-1] * LABEL_DIVISOR  # a crowd region
    cell, margin = _voronoi(centers, scales, height, width)
    gt = labels[cell]
    gt[margin < 1.5] = IGNORE_LABEL * LABEL_DIVISOR  # unlabelled boundaries, as in COCO

    moved = centers + rng.normal(0, 10, size=centers.shape).astype(np.float32)
    pred_labels = labels.copy()
    relabel = rng.random(count) < 0.1
    pred_labels[relabel] = (
        rng.integers(0, NUM_THINGS, relabel.sum()) * LABEL_DIVISOR + 200 + np.arange(relabel.sum())
    )
    pred_labels[labels % LABEL_DIVISOR == 0] = np.where(
        labels[labels % LABEL_DIVISOR == 0] // LABEL_DIVISOR < NUM_THINGS,
        labels[labels % LABEL_DIVISOR == 0] + 250,  # crowd regions are predicted as instances
        labels[labels % LABEL_DIVISOR == 0],
    )
    pred_cell, _ = _voronoi(moved, scales, height, width)
    return gt.astype(np.int32), pred_labels[pred_cell].astype(np.int32)


def write_folders(paths, num_images, height, width, segments, seed, pred_compress_level):
    """Writes `num_images` generated pairs as COCO panoptic ground truth and predictions."""
    rng = np.random.default_rng(seed)
    # Ground truth as COCO's own files are written (PIL's default zlib level 6); predictions as
    # the package's writer writes them.
    with CocoPanopticWriter(
        paths["gt_json"], paths["gt_folder"], DATASET, compress_level=6
    ) as gt_writer, CocoPanopticWriter(
        paths["pred_json"], paths["pred_folder"], DATASET, compress_level=pred_compress_level
    ) as writer:
        for image_id in range(num_images):
            gt, pred = generate_pair(rng, height, width, segments)
            gt_writer.write(image_id, gt)
            writer.write(image_id, pred)


def _cpu_seconds():
    # This process and its finished children (pool workers are joined before this is read).
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _timed(function, repeats):
    """Best wall time of `repeats` runs, the CPU seconds of that run, and the result."""
    best = (float("inf"), None)
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), _cpu_seconds()
        result = function()
        wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
        if wall < best[0]:
            best = (wall, cpu)
    return best[0], best[1], result


def _load_average():
    try:
        return os.getloadavg()
    except OSError:
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num_images", type=int, default=500)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--segments", type=int, default=15, help="mean segments per image")
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--skip_panopticapi", action="store_true")
    parser.add_argument("--json", metavar="PATH", help="also write the results to PATH as JSON")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pred_compress_level", type=int, default=DEFAULT_COMPRESS_LEVEL,
        help="zlib level of the predicted PNGs (ground truth: 6, as COCO's files)",
    )
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="pq_eval_") as root:
        paths = {
            "gt_json": os.path.join(root, "gt.json"),
            "gt_folder": os.path.join(root, "gt"),
            "pred_json": os.path.join(root, "pred.json"),
            "pred_folder": os.path.join(root, "pred"),
        }
        # Written by a fresh process: writing loads keras_axial.utils (and with it TensorFlow),
        # which would make the evaluator pick the slower forkserver start for its workers. The
        # command-line evaluator never has TensorFlow loaded.
        start = time.perf_counter()
        writer = multiprocessing.get_context("spawn").Process(
            target=write_folders, args=(paths, args.num_images, args.height, args.width,
                                        args.segments, args.seed,
                                        args.pred_compress_level)
        )
        writer.start()
        writer.join()
        if writer.exitcode != 0:
            raise RuntimeError(f"Generating the benchmark data failed (exit {writer.exitcode}).")
        generation_seconds = time.perf_counter() - start

        def folder(workers):
            return lambda: evaluate_coco_panoptic(
                paths["gt_json"], paths["pred_json"], paths["gt_folder"], paths["pred_folder"],
                num_workers=workers,
            )

        seconds, cpu, ours = _timed(folder(args.num_workers), args.repeats)
        rows.append(("evaluate_coco_panoptic (folders)", args.num_workers, seconds, cpu))
        seconds, cpu, _ = _timed(folder(1), args.repeats)
        rows.append(("evaluate_coco_panoptic (folders)", 1, seconds, cpu))

        # The same maps in memory, made after the folder runs so that their workers do not
        # fork a process holding them.
        rng = np.random.default_rng(args.seed)
        pairs = [
            generate_pair(rng, args.height, args.width, args.segments)
            for _ in range(args.num_images)
        ]
        mean_segments = float(np.mean([np.unique(gt).size for gt, _ in pairs]))

        def streaming():
            metric = PanopticQuality(NUM_CLASSES, range(NUM_THINGS), LABEL_DIVISOR, IGNORE_LABEL)
            for gt, pred in pairs:
                metric.update_state(gt, pred)
            return metric.result()

        seconds, cpu, streamed = _timed(streaming, args.repeats)
        rows.append(("PanopticQuality.update_state (in memory)", 1, seconds, cpu))

        max_difference = None
        if not args.skip_panopticapi:
            try:
                from panopticapi.evaluation import pq_compute
            except ImportError:
                pq_compute = None
            if pq_compute is not None:
                with contextlib.redirect_stdout(io.StringIO()):
                    seconds, cpu, reference = _timed(
                        lambda: pq_compute(
                            paths["gt_json"], paths["pred_json"], paths["gt_folder"],
                            paths["pred_folder"],
                        ),
                        args.repeats,
                    )
                rows.append(("panopticapi pq_compute (folders)", os.cpu_count(), seconds, cpu))
                max_difference = max(
                    abs(float(reference[group][key]) - ours[group][key])
                    for group in ("All", "Things", "Stuff")
                    for key in ("pq", "sq", "rq")
                )

    report = {
        "num_images": args.num_images,
        "size": [args.height, args.width],
        "mean_segments_per_gt_image": mean_segments,
        "generation_seconds": generation_seconds,
        "load_average_after": _load_average(),
        "cpu_count": os.cpu_count(),
        "pq": ours["All"]["pq"],
        "streaming_minus_folder_pq": streamed["All"]["pq"] - ours["All"]["pq"],
        "max_abs_difference_vs_panopticapi": max_difference,
        "results": [
            {
                "method": method,
                "processes": workers,
                "seconds": seconds,
                "images_per_second": args.num_images / seconds,
                "cpu_ms_per_image": 1000 * cpu / args.num_images,
                # What the CPU time allows on `processes` idle cores: the figure to compare
                # when other work shares the machine.
                "images_per_second_on_idle_cores": (
                    workers * args.num_images / cpu if cpu > 0 else None),
            }
            for method, workers, seconds, cpu in rows
        ],
    }
    print(
        f"{args.num_images} pairs of {args.height}x{args.width}, "
        f"{mean_segments:.1f} ground-truth ids per image (void included), "
        f"best of {args.repeats}; load average after: {report['load_average_after']}"
    )
    print(
        f"{'method':42s} {'procs':>5s} {'seconds':>8s} {'images/s':>9s} {'cpu ms/img':>10s} "
        f"{'img/s idle':>10s}"
    )
    for row in report["results"]:
        print(
            f"{row['method']:42s} {row['processes']:5d} {row['seconds']:8.2f} "
            f"{row['images_per_second']:9.1f} {row['cpu_ms_per_image']:10.2f} "
            f"{row['images_per_second_on_idle_cores'] or float('nan'):10.1f}"
        )
    print("img/s idle = processes * images / CPU seconds: the rate on otherwise idle cores.")
    print(f"PQ {report['pq']:.6f}; |ours - panopticapi| max {max_difference}")
    if args.json:
        # Imported only now: it loads TensorFlow, which must not be in the timed process.
        from keras_axial.utils import atomic_write

        with atomic_write(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
