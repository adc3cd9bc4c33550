"""The attention benchmark's deeplab2-style baseline computes exactly what the layer computes
(so its timings compare two schedules of one function), and the script runs."""

import json

import numpy as np

from benchmarks import attention as benchmark
from keras_axial.layers import AxialAttention2D


def test_deeplab2_style_baseline_equals_the_layer():
    shape = (2, 20, 24, benchmark.CHANNELS)
    layer = AxialAttention2D(benchmark.KEY_DEPTH, benchmark.VALUE_DEPTH,
                             num_heads=benchmark.HEADS)
    layer.build(shape)
    rng = np.random.default_rng(0)
    for weight in layer.weights:  # batch norms that are not the identity
        if weight.path.endswith(("moving_variance", "gamma")):
            weight.assign(rng.uniform(0.5, 1.5, weight.shape))
        elif weight.path.endswith(("moving_mean", "beta")):
            weight.assign(rng.normal(0.0, 0.3, weight.shape))
    baseline = benchmark.Deeplab2StyleAxialAttention2D()
    baseline.build(shape)
    baseline.copy_weights_from(layer)
    x = rng.normal(size=shape).astype("float32")
    expected = np.asarray(layer(x, training=False))
    np.testing.assert_allclose(np.asarray(baseline(x)), expected, atol=1e-5 * np.abs(expected).max())


def test_script_runs_and_writes_json(tmp_path):
    output = tmp_path / "attention.json"
    benchmark.main(["--sizes", "8", "--local-lengths", "16", "--xla", "off", "--repeats", "1",
                    "--json", str(output)])
    rows = json.loads(output.read_text())["rows"]
    cases = [row["case"] for row in rows]
    assert any(case.startswith("deeplab2-style axial 8x8") for case in cases)
    assert all(row["ms"] > 0 for row in rows)
