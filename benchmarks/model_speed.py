"""Forward latency, achieved GMAC/s and peak memory of Axial-DeepLab on the CPU.

For each model, input size, dtype policy (float32 / mixed_bfloat16) and XLA setting, a fresh
subprocess builds the model (random weights, inference mode), runs two warm-up calls (tracing,
XLA compilation) and times `--repeats` batch-1 forward passes (best and median). Achieved GMAC/s
= the model's M-Adds (`keras_axial.utils.count_madds`, the paper's counting) / best time. Peak
memory is the subprocess's peak resident set size (`resource.getrusage`, which `psutil` cannot
give after the fact): weights, activations and the framework together, so only differences
between rows are about the model. Then the time ratio between 2049x2049 and 1025x1025 inputs
(float32, no XLA): with span-65 attention the cost per pixel is flat, so it should be close to
the pixel ratio 3.996 (target: at most 4.4). A 2048x2048 float32 matmul, timed right after
each configuration in the same subprocess, gives the machine's attainable rate at that moment
(the 2 cores are often shared): the fraction of it is comparable between runs when the
absolute numbers are not. The machine load is printed with the results.

Reference on this machine (the issue): deeplab2's Axial-DeepLab-S (global attention from
stride 2, 67 GMACs at 641x641) takes 4.35 s, about 15 GMAC/s; a float32 matmul reaches about
200 GMAC/s. Target: at least 45 GMAC/s in float32.

Run from the repository root:

    python benchmarks/model_speed.py                     # the full grid (tens of minutes)
    python benchmarks/model_speed.py --models axial_deeplab_s --sizes 641 --dtypes float32 \\
        --xla off --ratio-models axial_deeplab_s --json speed.json
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
REPOSITORY_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPOSITORY_ROOT)

# Pixel ratio of 2049x2049 over 1025x1025, and the bound on the time ratio.
PIXEL_RATIO = 2049**2 / 1025**2
RATIO_TARGET = 4.4
GMACS_TARGET = 45.0


def measure(model_name, size, dtype, xla, repeats):
    """Runs in the subprocess: builds, warms up and times one configuration."""
    import resource

    import keras
    import numpy as np

    from keras_axial import models
    from keras_axial.utils import count_madds

    keras.config.set_dtype_policy(dtype)
    model = models.get_model(model_name)
    model.compile(jit_compile=xla)
    images = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype("float32")
    start = time.perf_counter()
    model.predict_on_batch(images)
    first_call = time.perf_counter() - start
    model.predict_on_batch(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        outputs = model.predict_on_batch(images)
        times.append(time.perf_counter() - start)
    assert all(np.isfinite(value).all() for value in outputs.values())
    madds = count_madds(model, (1, size, size, 3))
    best = min(times)
    # The shared machine's attainable rate right now: the fraction of it is comparable
    # between runs when the absolute numbers are not.
    matmul = matmul_gmacs()
    return {
        "model": model_name,
        "input_size": [size, size],
        "dtype": dtype,
        "xla": xla,
        "best_seconds": best,
        "median_seconds": statistics.median(times),
        "first_call_seconds": first_call,
        "madds": madds,
        "gmacs_per_second": madds / best / 1e9,
        "matmul_gmacs_per_second": matmul,
        "fraction_of_matmul": madds / best / 1e9 / matmul,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_in_subprocess(model_name, size, dtype, xla, repeats):
    command = [sys.executable, os.path.abspath(__file__), "--single", model_name, str(size),
               dtype, "on" if xla else "off", "--repeats", str(repeats)]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPOSITORY_ROOT)
    result_lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not result_lines:
        tail = "\n".join(completed.stderr.strip().splitlines()[-5:])
        return {"model": model_name, "input_size": [size, size], "dtype": dtype, "xla": xla,
                "error": f"exit {completed.returncode}: {tail}"}
    return json.loads(result_lines[-1])


def matmul_gmacs(repeats=5):
    import numpy as np
    import tensorflow as tf

    a = tf.random.normal((2048, 2048))
    matmul = tf.function(lambda x: tf.matmul(x, x))
    np.asarray(matmul(a))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(matmul(a))
        best = min(best, time.perf_counter() - start)
    return 2048**3 / best / 1e9


def _format(row):
    size = "x".join(str(d) for d in row["input_size"])
    head = f"{row['model']:18s} {size:>9s} {row['dtype']:15s} xla={'on ' if row['xla'] else 'off'}"
    if "error" in row:
        return f"{head}  FAILED: {row['error']}"
    return (f"{head} {row['best_seconds']:8.2f} s (median {row['median_seconds']:.2f}) "
            f"{row['madds'] / 1e9:8.1f} GMACs {row['gmacs_per_second']:7.1f} GMAC/s "
            f"({row['fraction_of_matmul']:4.0%} of matmul) peak {row['peak_rss_mib']:8.0f} MiB")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["axial_deeplab_s", "axial_deeplab_l"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[641, 1025])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "mixed_bfloat16"],
                        choices=["float32", "mixed_bfloat16"])
    parser.add_argument("--xla", choices=["off", "on", "both"], default="both")
    parser.add_argument("--ratio-models", nargs="*", default=["axial_deeplab_s"],
                        help="models timed at 1025 and 2049 for the scaling ratio")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write all rows and the summary to this JSON file")
    parser.add_argument("--single", nargs=4, metavar=("MODEL", "SIZE", "DTYPE", "XLA"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.single:
        name, size, dtype, xla = args.single
        print(json.dumps(measure(name, int(size), dtype, xla == "on", args.repeats)))
        return 0

    from keras_axial import models

    for name in set(args.models) | set(args.ratio_models):
        models.get_variant(name)  # unknown names fail before anything runs
    xla_settings = {"off": [False], "on": [True], "both": [False, True]}[args.xla]
    load_before = os.getloadavg()
    matmul = matmul_gmacs()
    print(f"float32 2048x2048 matmul: {matmul:.0f} GMAC/s; load average before: "
          f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f} "
          f"on {os.cpu_count()} CPUs", flush=True)
    rows = []
    for name in args.models:
        for size in args.sizes:
            for dtype in args.dtypes:
                for xla in xla_settings:
                    rows.append(run_in_subprocess(name, size, dtype, xla, args.repeats))
                    print(_format(rows[-1]), flush=True)
    ratios = {}
    for name in args.ratio_models:
        timed = {}
        for size in (1025, 2049):
            found = [r for r in rows if r["model"] == name and r["input_size"] == [size, size]
                     and r["dtype"] == "float32" and not r["xla"] and "error" not in r]
            if not found:
                found = [run_in_subprocess(name, size, "float32", False, args.repeats)]
                rows.append(found[0])
                print(_format(found[0]), flush=True)
            timed[size] = found[0].get("best_seconds")
        if None not in timed.values():
            ratios[name] = timed[2049] / timed[1025]
            verdict = "ok" if ratios[name] <= RATIO_TARGET else "ABOVE TARGET"
            print(f"{name}: time(2049x2049) / time(1025x1025) = {ratios[name]:.2f} "
                  f"(pixel ratio {PIXEL_RATIO:.2f}, target <= {RATIO_TARGET}: {verdict})")
    float32_rows = [r for r in rows if r.get("dtype") == "float32" and "error" not in r]
    if float32_rows:
        rates = [r["gmacs_per_second"] for r in float32_rows]
        fractions = [r["fraction_of_matmul"] for r in float32_rows]
        print(f"float32 GMAC/s: {min(rates):.1f} .. {max(rates):.1f} (target >= {GMACS_TARGET}); "
              f"{min(fractions):.0%} .. {max(fractions):.0%} of the matmul rate measured with "
              "each row")
    load_after = os.getloadavg()
    print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    if args.json:
        from keras_axial.utils import atomic_write

        with atomic_write(args.json, "w") as handle:
            json.dump({"rows": rows, "time_ratio_2049_over_1025": ratios,
                       "matmul_gmacs_per_second": matmul, "load_before": load_before,
                       "load_after": load_after}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
