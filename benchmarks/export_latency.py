"""CPU latency of an Axial-DeepLab export: Keras, SavedModel and TFLite (float32, float16,
dynamic-range int8, int8), network and post-processing separately, batch 1.

For every size (`--sizes`, default 513 and 1025) and runtime the script times
- `network`: images -> semantic logits, center heatmap, offsets (the `network` signature);
- `end_to_end`: uint8 images -> panoptic maps and scores (the `serving_default` signature);
- `postprocess`: the post-processing alone. For Keras it is timed directly
  (`panoptic_deeplab_postprocess` in a `tf.function` on the network's outputs); for the
  exported graphs, which run both parts in one call, it is `end_to_end - network` (medians).

Weights are random, with the center head's bias set so that about `--centers` centers (30 by
default, a typical Cityscapes image) pass the 0.1 threshold, since the post-processing's cost
follows the number of centers; semantic logits and offsets are rescaled to trained-model
magnitudes. Medians and minima of `--repeats` timed calls after `--warmup` untimed ones.
The exports are written to `--work_dir` and reused by later runs (`--rebuild` to redo them).

Usage (from the repository root):
    python benchmarks/export_latency.py
    python benchmarks/export_latency.py --sizes 513 --runtimes keras savedmodel tflite_float32
    python benchmarks/export_latency.py --model axial_deeplab_s --tiny --sizes 129 --json out.json
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Run from a checkout without installing: the repository root holds `keras_axial` and `export`.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

RUNTIMES = ("keras", "savedmodel", "tflite_float32", "tflite_float16", "tflite_dynamic",
            "tflite_int8")
_QUANTIZE = {"tflite_float32": "none", "tflite_float16": "float16",
             "tflite_dynamic": "dynamic", "tflite_int8": "int8"}


def _timed(function, warmup, repeats):
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000.0)
    return {"median_ms": statistics.median(times), "min_ms": min(times)}


def _center_peaks(heatmap, kernel=7):
    import tensorflow as tf

    pooled = tf.nn.max_pool2d(heatmap, kernel, 1, "SAME").numpy()
    return np.sort(heatmap[(heatmap == pooled)])[::-1]


def calibrate_heads(model, image, centers):
    """Trained-model magnitudes: logits std 3, offsets std 4 px, ~`centers` centers > 0.1."""
    outputs = model(image, training=False)
    for key, layer, std in (("semantic_logits", "semantic_head", 3.0),
                            ("offsets", "offset_head", 4.0),
                            ("center_heatmap", "center_head", 0.05)):
        conv = model.get_layer(layer).output_conv
        value = np.asarray(outputs[key])
        scale = std / max(float(value.std()), 1e-12)
        conv.kernel.assign(np.asarray(conv.kernel) * scale)
        conv.bias.assign((np.asarray(conv.bias) - value.mean()) * scale)
    peaks = _center_peaks(np.asarray(model(image, training=False)["center_heatmap"]))
    conv = model.get_layer("center_head").output_conv
    # The `centers`-th highest peak lands just above the 0.1 threshold.
    shift = 0.1 + 1e-4 - float(peaks[min(centers, len(peaks)) - 1])
    conv.bias.assign(np.asarray(conv.bias) + shift)
    heatmap = np.asarray(model(image, training=False)["center_heatmap"])
    return int(np.sum(_center_peaks(heatmap) > 0.1))


def build_exports(args, work_dir, runtimes):
    """The SavedModel and the TFLite files the runtimes need (reused when present)."""
    from export import building
    from export import saved_model
    from export import tflite

    saved = work_dir / "saved_model"
    overrides = {"num_classes": 19}
    model, overrides = building.build_registry_model(
        args.model, tiny=args.tiny, overrides=overrides, seed=0
    )
    weights = work_dir / "weights.weights.h5"
    size = max(args.sizes)
    image = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype(np.float32)
    if args.rebuild or not weights.exists():
        found = calibrate_heads(model, image, args.centers)
        model.save_weights(str(weights))
        print(f"center head calibrated: {found} centers at {size}x{size}", flush=True)
    model.load_weights(str(weights))
    if args.rebuild or not saved.exists():
        start = time.perf_counter()
        saved_model.export_saved_model(
            model, saved, dataset_spec="cityscapes",
            postprocess_options={"stuff_area_limit": 2048, "nms_kernel": 7},
            overwrite=True, registry_name=args.model, overrides=overrides,
        )
        print(f"SavedModel written in {time.perf_counter() - start:.0f} s", flush=True)
    files = {}
    for runtime in runtimes:
        if runtime not in _QUANTIZE:
            continue
        path = work_dir / f"{runtime}.tflite"
        if args.rebuild or not path.exists():
            start = time.perf_counter()
            tflite.convert_saved_model(
                saved, path, quantize=_QUANTIZE[runtime], overwrite=True,
                representative_size=(args.calibration_size, args.calibration_size),
                representative_count=2,
            )
            print(f"{path.name} written in {time.perf_counter() - start:.0f} s "
                  f"({path.stat().st_size / 2**20:.1f} MiB)", flush=True)
        files[runtime] = path
    return model, saved, files


def benchmark(args):
    import tensorflow as tf

    from export import metadata as metadata_lib
    from export import runners
    from keras_axial.postprocessing import panoptic_deeplab_postprocess

    work_dir = pathlib.Path(args.work_dir or tempfile.mkdtemp(prefix="export_latency_"))
    work_dir.mkdir(parents=True, exist_ok=True)
    model, saved, files = build_exports(args, work_dir, args.runtimes)
    metadata = metadata_lib.read_metadata(saved)
    postprocessing = metadata["postprocessing"]
    network_function = tf.function(lambda x: model(x, training=False))
    postprocess_function = tf.function(
        lambda logits, heatmap, offsets: panoptic_deeplab_postprocess(
            logits, heatmap, offsets, **postprocessing)
    )
    keras_runner = runners.KerasRunner(model, metadata)
    saved_runner = runners.SavedModelRunner(saved) if "savedmodel" in args.runtimes else None
    results = []
    for size in args.sizes:
        image = np.random.default_rng(size).uniform(0, 255, (1, size, size, 3))
        uint8_image = image.astype(np.uint8)
        float_image = uint8_image.astype(np.float32)
        for runtime in args.runtimes:
            row = {"runtime": runtime, "size": size}
            if runtime == "keras":
                padded = keras_runner.padded_size(size)
                padded_image = np.pad(float_image, ((0, 0), (0, padded - size),
                                                    (0, padded - size), (0, 0)),
                                      constant_values=127.5)
                outputs = {k: v[:, :size, :size] for k, v in
                           network_function(padded_image).items()}
                row["network"] = _timed(lambda: [v.numpy() for v in
                                                 network_function(padded_image).values()],
                                        args.warmup, args.repeats)
                row["postprocess"] = _timed(
                    lambda: [v.numpy() for v in postprocess_function(
                        outputs["semantic_logits"], outputs["center_heatmap"],
                        outputs["offsets"]).values()],
                    args.warmup, args.repeats)
                row["end_to_end"] = {
                    key: row["network"][key] + row["postprocess"][key]
                    for key in ("median_ms", "min_ms")
                }
                row["centers"] = int(np.sum(postprocess_function(
                    outputs["semantic_logits"], outputs["center_heatmap"],
                    outputs["offsets"])["instance_panoptic_ids"].numpy() >= 0))
            else:
                runner = saved_runner if runtime == "savedmodel" else runners.TFLiteRunner(
                    files[runtime], num_threads=args.threads)
                row["network"] = _timed(lambda: runner("network", float_image),
                                        args.warmup, args.repeats)
                row["end_to_end"] = _timed(lambda: runner("serving_default", uint8_image),
                                           args.warmup, args.repeats)
                row["postprocess"] = {
                    key: row["end_to_end"][key] - row["network"][key]
                    for key in ("median_ms", "min_ms")
                }
            results.append(row)
            print(_format_row(row), flush=True)
    return {
        "model": args.model + (" (tiny)" if args.tiny else ""),
        "batch": 1,
        "threads": args.threads,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average": os.getloadavg()},
        "work_dir": str(work_dir),
        "results": results,
    }


def _format_row(row):
    return (f"{row['size']:>5}  {row['runtime']:<15} network {row['network']['median_ms']:9.1f} "
            f"ms   post-processing {row['postprocess']['median_ms']:8.1f} ms   end-to-end "
            f"{row['end_to_end']['median_ms']:9.1f} ms   (min {row['end_to_end']['min_ms']:.1f})")


def _table(report):
    header = (f"{'size':>5}  {'runtime':<15} {'network ms':>11} {'post-proc ms':>13} "
              f"{'end-to-end ms':>14}")
    lines = [f"{report['model']}, batch 1, CPU ({report['machine']['cpus']} cores, load "
             f"average at the end {report['machine']['load_average'][0]:.2f}), medians",
             header, "-" * len(header)]
    for row in report["results"]:
        lines.append(f"{row['size']:>5}  {row['runtime']:<15} "
                     f"{row['network']['median_ms']:>11.1f} "
                     f"{row['postprocess']['median_ms']:>13.1f} "
                     f"{row['end_to_end']['median_ms']:>14.1f}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="axial_deeplab_s")
    parser.add_argument("--tiny", action="store_true", help="the tiny form (quick check)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[513, 1025])
    parser.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="TFLite interpreter threads")
    parser.add_argument("--centers", type=int, default=30,
                        help="centers above the threshold in the benchmark image")
    parser.add_argument("--calibration_size", type=int, default=257,
                        help="int8 calibration image size")
    parser.add_argument("--work_dir", default=None,
                        help="where exports are written and reused (default: a new temp dir)")
    parser.add_argument("--rebuild", action="store_true", help="redo the exports")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if args.model not in ("axial_deeplab_s", "axial_deeplab_m", "axial_deeplab_l",
                          "axial_deeplab_xl"):
        parser.error(f"--model must be an Axial-DeepLab. Received: {args.model!r}")
    if min(args.sizes) < 17 or args.repeats < 1 or args.warmup < 0:
        parser.error("--sizes must be >= 17, --repeats >= 1, --warmup >= 0.")
    report = benchmark(args)
    print(_table(report))
    if args.json:
        from keras_axial.utils import atomic_write

        with atomic_write(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return report


if __name__ == "__main__":
    main()
