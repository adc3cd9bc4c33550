"""Times `keras_axial.postprocessing.panoptic_deeplab_postprocess` on realistic synthetic inputs.

Two settings, those of issue 4:
- cityscapes: 1 x 1025 x 2049, 19 classes (things 11..18), about 30 instances, NMS kernel 13,
  stuff area limit 2048, keep 200 centers. deeplab2 needs about 660 ms here; target <= 150 ms.
- coco: 1 x 641 x 641, 134 classes (deeplab2 ids: 0 void, things 1..80), NMS kernel 41,
  stuff area limit 4096. deeplab2 needs about 260 ms here; target <= 60 ms.

Each setting runs in three modes: eager (keras.ops on TensorFlow eager), graph
(`tf.function`) and xla (`tf.function(jit_compile=True)`), reporting the median and the minimum
of `--repeats` timed calls after `--warmup` untimed ones, and the median CPU time per call (all
threads of the process; less sensitive than wall time to other processes on shared cores). The
inputs imitate a trained model: Gaussian centers (sigma 8) plus noise (std 0.02), offsets that
point at the centers plus noise (std 1.5 px), confident logits (+6 on the true class) plus
standard normal noise.

Usage (from the repository root):
    python benchmarks/postprocess.py
    python benchmarks/postprocess.py --settings coco --modes xla --repeats 20 --json out.json
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Run from a checkout without installing: the repository root holds `keras_axial`.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

SETTINGS = {
    "cityscapes": dict(
        height=1025,
        width=2049,
        num_classes=19,
        thing_class_ids=tuple(range(11, 19)),
        num_instances=30,
        label_divisor=1000,
        void_label=255,
        nms_kernel=13,
        stuff_area_limit=2048,
        keep_k_centers=200,
        target_ms=150.0,
        deeplab2_ms=660.0,
    ),
    "coco": dict(
        height=641,
        width=641,
        num_classes=134,
        thing_class_ids=tuple(range(1, 81)),
        num_instances=15,
        label_divisor=256,
        void_label=0,
        nms_kernel=41,
        stuff_area_limit=4096,
        keep_k_centers=200,
        target_ms=60.0,
        deeplab2_ms=260.0,
    ),
}
MODES = ("eager", "graph", "xla")


def make_inputs(setting, seed=0):
    """Synthetic model outputs: stuff in horizontal bands, elliptic thing instances on top."""
    rng = np.random.default_rng(seed)
    height, width, num_classes = setting["height"], setting["width"], setting["num_classes"]
    things = np.array(setting["thing_class_ids"])
    stuff = np.array([c for c in range(num_classes) if c not in set(things.tolist())])
    stuff = stuff[stuff != setting["void_label"]] if len(stuff) > 1 else stuff

    band_classes = rng.choice(stuff, size=8)
    rows = np.arange(height)[:, None]
    cols = np.arange(width)[None, :]
    semantic = np.broadcast_to(band_classes[rows * 8 // height], (height, width)).copy()
    heatmap = np.zeros((height, width), np.float32)
    offset_y = np.zeros((height, width), np.float32)
    offset_x = np.zeros((height, width), np.float32)
    for _ in range(setting["num_instances"]):
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        ry, rx = rng.integers(15, max(16, height // 8)), rng.integers(15, max(16, width // 10))
        mask = ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1.0
        semantic[mask] = rng.choice(things)
        offset_y[mask] = (cy - rows + np.zeros_like(cols))[mask]
        offset_x[mask] = (cx - cols + np.zeros_like(rows))[mask]
        gaussian = np.exp(-((rows - cy) ** 2 + (cols - cx) ** 2) / (2 * 8.0**2))
        heatmap = np.maximum(heatmap, gaussian.astype(np.float32))
    heatmap += rng.normal(0.0, 0.02, heatmap.shape).astype(np.float32)
    offset_y += rng.normal(0.0, 1.5, offset_y.shape).astype(np.float32)
    offset_x += rng.normal(0.0, 1.5, offset_x.shape).astype(np.float32)
    logits = rng.normal(0.0, 1.0, (height, width, num_classes)).astype(np.float32)
    np.put_along_axis(logits, semantic[..., None], 6.0, axis=-1)
    return (
        logits[None],
        heatmap[None, :, :, None],
        np.stack([offset_y, offset_x], axis=-1)[None],
    )


def time_mode(function, inputs, warmup, repeats):
    import tensorflow as tf

    inputs = [tf.constant(x) for x in inputs]
    for _ in range(warmup):
        outputs = function(*inputs)
    _ = outputs["panoptic"].numpy()
    durations, cpu_times = [], []
    for _ in range(repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        outputs = function(*inputs)
        _ = outputs["panoptic"].numpy()  # forces completion
        durations.append((time.perf_counter() - start) * 1000.0)
        cpu_times.append((time.process_time() - cpu_start) * 1000.0)
    return durations, cpu_times, outputs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--settings", nargs="+", choices=sorted(SETTINGS), default=["cityscapes", "coco"]
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls (default 2)")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls (default 10)")
    parser.add_argument("--json", metavar="PATH", help="also write the results to PATH as JSON")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from keras_axial.postprocessing import panoptic_deeplab_postprocess

    load_before = os.getloadavg()
    results = []
    for name in args.settings:
        setting = SETTINGS[name]
        inputs = make_inputs(setting)
        kwargs = {
            key: setting[key]
            for key in (
                "thing_class_ids",
                "label_divisor",
                "void_label",
                "nms_kernel",
                "stuff_area_limit",
                "keep_k_centers",
            )
        }

        def postprocess(logits, heatmap, offsets, kwargs=kwargs):
            return panoptic_deeplab_postprocess(logits, heatmap, offsets, **kwargs)

        functions = {
            "eager": postprocess,
            "graph": tf.function(postprocess),
            "xla": tf.function(postprocess, jit_compile=True),
        }
        reference = None
        for mode in args.modes:
            durations, cpu_times, outputs = time_mode(
                functions[mode], inputs, args.warmup, args.repeats
            )
            panoptic = outputs["panoptic"].numpy()
            if reference is None:
                reference = panoptic
            results.append(
                dict(
                    setting=name,
                    mode=mode,
                    shape=[1, setting["height"], setting["width"], setting["num_classes"]],
                    nms_kernel=setting["nms_kernel"],
                    median_ms=round(statistics.median(durations), 2),
                    min_ms=round(min(durations), 2),
                    cpu_median_ms=round(statistics.median(cpu_times), 2),
                    target_ms=setting["target_ms"],
                    deeplab2_ms=setting["deeplab2_ms"],
                    num_instances=int((outputs["instance_panoptic_ids"].numpy() >= 0).sum()),
                    same_panoptic_as_first_mode=bool(np.array_equal(panoptic, reference)),
                )
            )
            print(
                f"{name:11s} {mode:6s} median {results[-1]['median_ms']:8.1f} ms  "
                f"min {results[-1]['min_ms']:8.1f} ms  "
                f"cpu {results[-1]['cpu_median_ms']:8.1f} ms  "
                f"(target {setting['target_ms']:.0f} ms, "
                f"deeplab2 ~{setting['deeplab2_ms']:.0f} ms)  "
                f"instances {results[-1]['num_instances']}",
                flush=True,
            )
    load = os.getloadavg()
    report = dict(
        benchmark="postprocess",
        cpu_count=os.cpu_count(),
        load_average_before=[round(x, 2) for x in load_before],
        load_average_after=[round(x, 2) for x in load],
        tensorflow=tf.__version__,
        results=results,
    )
    print(
        "load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}, "
        "after: {:.2f} {:.2f} {:.2f}".format(*load_before, *load)
    )
    if args.json:
        from keras_axial.utils import atomic_write

        with atomic_write(args.json, "w") as stream:
            json.dump(report, stream, indent=2)
    return report


if __name__ == "__main__":
    main()
