"""Speed of AxialAttention2D against plain 2D self-attention, and of local-span attention.

Times, on the CPU, inference of
- `AxialAttention2D(64, 128, num_heads=8)` (global span, the paper's first-stage widths) on
  `[2, S, S, 128]` maps,
- the same layer computed the way deeplab2's `AxialAttention2D` computes it (written here from
  its description in SPEC section 2.2, deeplab2 itself cannot be installed beside Keras 3):
  relative tables gathered to `[L, L, d]` on every call, the three similarity terms stacked into
  one `[3, B', heads, L, L]` tensor and batch-normalised, the two retrieved outputs stacked and
  batch-normalised, one pass over the whole batch; XLA on or off as for ours. This is the
  same-machine baseline for the issue's "3x deeplab2's throughput": the issue's deeplab2
  milliseconds were measured on a machine whose matmul ran at about 200 GMAC/s,
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


class Deeplab2StyleAxialAttention2D(keras.layers.Layer):
    """Global position-sensitive axial attention, height then width, computed as deeplab2 does
    at inference (SPEC 2.2): gathered `[L, L, d]` tables, stacked similarity and output terms
    each passed through an inference batch norm (an affine map), no chunking. Same M-Adds as
    `AxialAttention2D`; only the schedule of the computation differs."""

    MAX_SPAN = 255  # deeplab2's 509-row tables

    def build(self, input_shape):
        rows = 2 * self.MAX_SPAN - 1
        key_depth, value_depth = KEY_DEPTH // HEADS, VALUE_DEPTH // HEADS
        self.axes = []
        channels = input_shape[-1]
        for _ in range(2):
            self.axes.append({
                "kernel": self.add_weight(shape=(channels, 2 * KEY_DEPTH + VALUE_DEPTH),
                                          initializer="glorot_uniform"),
                "qkv_bn": self._affine((2 * KEY_DEPTH + VALUE_DEPTH,)),
                "query_rpe": self.add_weight(shape=(rows, key_depth), initializer="random_normal"),
                "key_rpe": self.add_weight(shape=(rows, key_depth), initializer="random_normal"),
                "value_rpe": self.add_weight(shape=(rows, value_depth),
                                             initializer="random_normal"),
                "similarity_bn": self._affine((3, 1, HEADS, 1, 1)),
                "output_bn": self._affine((2, 1, HEADS, 1, value_depth)),
            })
            channels = VALUE_DEPTH

    def copy_weights_from(self, layer):
        """Takes the weights of a global `AxialAttention2D(KEY_DEPTH, VALUE_DEPTH, HEADS)`
        (batch norms as their inference affine maps), so both compute the same function."""
        for axis, attention in zip(self.axes, (layer.height_attention, layer.width_attention)):
            axis["kernel"].assign(attention.qkv_kernel)
            for weight, value in zip(axis["qkv_bn"],
                                     attention._inference_affine(attention.qkv_batch_norm)):
                weight.assign(value)
            for name in ("query_rpe", "key_rpe", "value_rpe"):
                axis[name].assign(getattr(attention, name))
            for target, norms, shape in (
                ("similarity_bn", attention.similarity_batch_norms, (1, HEADS, 1, 1)),
                ("output_bn", attention.output_batch_norms, (1, HEADS, 1, VALUE_DEPTH // HEADS)),
            ):
                affines = [attention._inference_affine(norm) for norm in norms.values()]
                for index, weight in enumerate(axis[target]):
                    weight.assign(np.stack([np.reshape(a[index], shape) for a in affines]))

    def _affine(self, shape):
        return (self.add_weight(shape=shape, initializer="ones"),
                self.add_weight(shape=shape, initializer="zeros"))

    def _one_axis(self, sequences, weights):
        batch, length = tf.shape(sequences)[0], tf.shape(sequences)[1]
        scale, offset = weights["qkv_bn"]
        qkv = tf.einsum("blc,cd->bld", sequences, weights["kernel"]) * scale + offset
        query, key, value = tf.split(qkv, [KEY_DEPTH, KEY_DEPTH, VALUE_DEPTH], axis=-1)

        def heads(x):  # [B', L, h * d] -> [B', h, L, d]
            return tf.transpose(tf.reshape(x, (batch, length, HEADS, -1)), (0, 2, 1, 3))

        query, key, value = heads(query), heads(key), heads(value)
        positions = tf.range(length)
        index = positions[None, :] - positions[:, None] + self.MAX_SPAN - 1  # [L, L]
        query_rpe = tf.gather(weights["query_rpe"], index)  # [L, L, dk]
        key_rpe = tf.gather(weights["key_rpe"], index)
        value_rpe = tf.gather(weights["value_rpe"], index)  # [L, L, dv]
        similarity = tf.stack([
            tf.einsum("bhid,bhjd->bhij", query, key),
            tf.einsum("bhid,ijd->bhij", query, query_rpe),
            tf.einsum("bhjd,ijd->bhij", key, key_rpe),
        ])  # [3, B', h, L, L]
        scale, offset = weights["similarity_bn"]
        logits = tf.reduce_sum(similarity * scale + offset, axis=0)
        attention = tf.nn.softmax(logits, axis=-1)
        retrieved = tf.stack([
            tf.einsum("bhij,bhjd->bhid", attention, value),
            tf.einsum("bhij,ijd->bhid", attention, value_rpe),
        ])  # [2, B', h, L, dv]
        scale, offset = weights["output_bn"]
        output = tf.reduce_sum(retrieved * scale + offset, axis=0)
        return tf.reshape(tf.transpose(output, (0, 2, 1, 3)), (batch, length, VALUE_DEPTH))

    def call(self, x):
        batch, height, width = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
        columns = tf.reshape(tf.transpose(x, (0, 2, 1, 3)), (batch * width, height, -1))
        x = self._one_axis(columns, self.axes[0])
        x = tf.transpose(tf.reshape(x, (batch, width, height, VALUE_DEPTH)), (0, 2, 1, 3))
        rows = tf.reshape(x, (batch * height, width, VALUE_DEPTH))
        return tf.reshape(self._one_axis(rows, self.axes[1]), (batch, height, width, VALUE_DEPTH))


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
    parser.add_argument("--local-lengths", type=int, nargs="*", default=[64, 128, 256, 512],
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
        deeplab2_style = Deeplab2StyleAxialAttention2D()
        deeplab2_style.build(shape)
        deeplab2_style.copy_weights_from(axial)
        for xla in modes:
            ours = run_case(axial, shape, axial.compute_madds(shape), xla, args.repeats)
            report(f"axial 2D global {size}x{size}", xla, ours)
            baseline = run_case(deeplab2_style, shape, axial.compute_madds(shape), xla,
                                args.repeats)
            baseline["speedup_of_ours"] = round(baseline["ms"] / ours["ms"], 2)
            report(f"deeplab2-style axial {size}x{size} (x{baseline['speedup_of_ours']})", xla,
                   baseline)
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
