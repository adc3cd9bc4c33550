"""Speed of AxialAttention2D against plain 2D self-attention, and of local-span attention.

Times, on the CPU, inference of
- `AxialAttention2D(64, 128, num_heads=8)` (global span, the paper's first-stage widths) on
  `[2, S, S, 128]` maps,
- plain multi-head self-attention over all `S * S` positions with the same channels (queries
  and keys 64, values 128, 8 heads, content term only) where its `[S*S, S*S]` logits fit in
  memory,
- `AxialAttention(64, 128, span=65)` and the global layer on `[32, L, 128]` sequences (cost
  per position must stay flat with a local span: linear in the axis length),
with and without XLA, next to a 2048x2048 float32 matmul timed right after each case (the
machine's attainable rate at that moment; `ratio` = achieved / matmul rate, which stays
meaningful on a shared machine). M-Adds follow the paper's count (`compute_madds`); achieved
GMAC/s = M-Adds / time.

Run from the repository root:

    python benchmarks/attention.py                       # all sizes, with and without XLA
    python benchmarks/attention.py --sizes 32 64 --xla on --json attention.json
"""

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from keras_axial.layers import AxialAttention, AxialAttention2D  # noqa: E402
from keras_axial.utils import atomic_write  # noqa: E402

KEY_DEPTH, VALUE_DEPTH, HEADS, CHANNELS, BATCH = 64, 128, 8, 128, 2
# Plain attention is skipped when its float32 logits would exceed this many bytes.
PLAIN_LOGITS_LIMIT = 4 << 30


def time_call(function, inputs, repeats):
    """Best wall time in milliseconds over `repeats` calls, after two warm-up calls."""
    for _ in range(2):
        np.asarray(function(inputs))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(function(inputs))
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def matmul_rate(repeats):
    a = tf.random.normal((2048, 2048))
    milliseconds = time_call(tf.function(lambda x: tf.matmul(x, x)), a, repeats)
    return 2048 ** 3 / milliseconds / 1e6


class PlainAttention2D(keras.layers.Layer):
    """Multi-head self-attention over all positions of a map (no relative terms, no
    scaling), with the same projection widths as the axial layer: the baseline it replaces."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 2 * KEY_DEPTH + VALUE_DEPTH),
                                      initializer="glorot_uniform")

    def call(self, x):
        batch, height, width, channels = x.shape
        qkv = ops.matmul(ops.reshape(x, (batch, height * width, channels)), self.kernel)

        def heads(t, depth):
            return ops.transpose(ops.reshape(t, (batch, height * width, HEADS, depth)),
                                 (0, 2, 1, 3))

        q = heads(qkv[..., :KEY_DEPTH], KEY_DEPTH // HEADS)
        k = heads(qkv[..., KEY_DEPTH:2 * KEY_DEPTH], KEY_DEPTH // HEADS)
        v = heads(qkv[..., 2 * KEY_DEPTH:], VALUE_DEPTH // HEADS)
        weights = ops.softmax(ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))), axis=-1)
        out = ops.transpose(ops.matmul(weights, v), (0, 2, 1, 3))
        return ops.reshape(out, (batch, height, width, VALUE_DEPTH))

    @staticmethod
    def madds(size):
        positions = size * size
        return BATCH * (positions * CHANNELS * (2 * KEY_DEPTH + VALUE_DEPTH)
                        + positions * positions * (KEY_DEPTH + VALUE_DEPTH))


def run_case(layer, shape, madds, xla, repeats):
    x = tf.random.normal(shape)
    layer(x)
    function = tf.function(lambda t: layer(t, training=False), jit_compile=xla)
    milliseconds = time_call(function, x, repeats)
    return {"ms": round(milliseconds, 2), "gmacs": round(madds / milliseconds / 1e6, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128],
                        help="map sizes S of the [2, S, S, 128] comparison (default 32 64 128)")
    parser.add_argument("--local-lengths", type=int, nargs="+", default=[64, 128, 256, 512],
                        help="axis lengths L of the [32, L, 128] span-65 timing "
                             "(default 64 128 256 512); none to skip")
    parser.add_argument("--xla", choices=["both", "on", "off"], default="both",
                        help="time with XLA (jit_compile=True), without, or both (default)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed calls per case; the best is reported (default 5)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    modes = {"both": [False, True], "on": [True], "off": [False]}[args.xla]

    results = {"machine": platform.processor() or platform.machine(),
               "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    results["matmul_gmacs"] = round(matmul_rate(args.repeats), 1)
    print(f"float32 2048x2048 matmul: {results['matmul_gmacs']} GMAC/s "
          f"(load average {results['load_before'][0]:.2f}, {results['cpus']} CPUs)")

    rows = []
    header = f"{'case':<34}{'XLA':>5}{'ms':>10}{'GMAC/s':>9}{'matmul':>9}{'ratio':>9}"
    print("\n" + header + "\n" + "-" * len(header))

    def report(name, xla, result):
        # On a shared machine the attainable rate drifts: each row is compared with a matmul
        # timed right after it.
        reference = matmul_rate(args.repeats)
        result.update(case=name, xla=xla, matmul_gmacs=round(reference, 1),
                      fraction_of_matmul=round(result["gmacs"] / reference, 3))
        rows.append(result)
        print(f"{name:<34}{'on' if xla else 'off':>5}{result['ms']:>10.1f}"
              f"{result['gmacs']:>9.1f}{reference:>9.1f}{result['fraction_of_matmul']:>9.2f}",
              flush=True)

    for size in args.sizes:
        shape = (BATCH, size, size, CHANNELS)
        axial = AxialAttention2D(KEY_DEPTH, VALUE_DEPTH, num_heads=HEADS)
        axial.build(shape)
        plain = PlainAttention2D()
        plain_fits = BATCH * HEADS * (size * size) ** 2 * 4 <= PLAIN_LOGITS_LIMIT
        for xla in modes:
            report(f"axial 2D global {size}x{size}", xla,
                   run_case(axial, shape, axial.compute_madds(shape), xla, args.repeats))
            if plain_fits:
                report(f"plain 2D attention {size}x{size}", xla,
                       run_case(plain, shape, PlainAttention2D.madds(size), xla, args.repeats))
        if not plain_fits:
            print(f"{'plain 2D attention ' + f'{size}x{size}':<34}  skipped: its logits "
                  f"need {BATCH * HEADS * (size * size) ** 2 * 4 / 2 ** 30:.0f} GiB")

    for length in args.local_lengths:
        shape = (32, length, CHANNELS)
        for span in (65, None):
            layer = AxialAttention(KEY_DEPTH, VALUE_DEPTH, num_heads=HEADS, span=span)
            layer.build(shape)
            for xla in modes:
                result = run_case(layer, shape, layer.compute_madds(shape), xla, args.repeats)
                result["us_per_position"] = round(result["ms"] * 1e3 / (32 * length), 2)
                report(f"{'local 65' if span else 'global'} 1D L={length} "
                       f"({result['us_per_position']} us/pos)", xla, result)

    results["load_after"] = os.getloadavg()
    results["rows"] = rows
    print(f"\nload average after: {results['load_after'][0]:.2f}")
    if args.json:
        with atomic_write(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return results


if __name__ == "__main__":
    main()
