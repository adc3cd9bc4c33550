"""deeplab2 weight import: the two deeplab2 fixtures within 1e-4, and other configurations
(strides, heads, depths, lengths, switched-off terms) against the float64 numpy oracle,
which is itself checked against deeplab2's outputs and intermediates first."""

import json
import os
import pathlib

import numpy as np
import pytest

from keras_axial.convert import layer_from_deeplab2
from tests.layers import numpy_axial

REPO = pathlib.Path(__file__).resolve().parents[2]
IN_REPO = REPO / "tests" / "convert" / "fixtures" / "deeplab2"
TERMS = ("content", "query_rpe", "key_rpe")
RETRIEVE = ("content", "value_rpe")


def fixture_dir():
    """The in-repo copy of `../shared/fixtures/deeplab2`. When the shared folder is there
    (`$KERAS_AXIAL_SHARED`, default `<repo>/../shared`) the copy must be identical to it; an
    explicitly set `$KERAS_AXIAL_SHARED` must exist."""
    if not (IN_REPO / "reference.json").is_file():
        raise FileNotFoundError(f"deeplab2 fixtures missing: {IN_REPO} (copy them from "
                                "../shared/fixtures/deeplab2)")
    shared = os.environ.get("KERAS_AXIAL_SHARED")
    if shared is not None and not pathlib.Path(shared).is_dir():
        raise FileNotFoundError(f"KERAS_AXIAL_SHARED={shared} is not a folder")
    shared = pathlib.Path(shared or REPO.parent / "shared") / "fixtures" / "deeplab2"
    if shared.is_dir():
        for name in ("reference.json", "axial_attention_1d_height.npz",
                     "axial_block_stride1.npz"):
            assert (shared / name).read_bytes() == (IN_REPO / name).read_bytes(), name
    return IN_REPO


def load_fixture(key):
    directory = fixture_dir()
    spec = json.loads((directory / "reference.json").read_text())["files"][key]
    data = np.load(directory / spec["file"])
    weights = {k[len("weights/"):]: data[k] for k in data.files if k.startswith("weights/")}
    return spec, data, weights


# --- deeplab2-named weights -> oracle weights (independent of the converter) ---------------

def oracle_attention(weights, prefix, terms=TERMS, retrieve=RETRIEVE):
    def bn(path, rows=None):
        values = {k: np.asarray(weights[f"{prefix}{path}/{k}"]) for k in numpy_axial.BN_KEYS}
        if rows is None:
            return values
        return [{k: v.reshape(len(rows), -1)[i] for k, v in values.items()}
                for i in range(len(rows))]
    result = {
        "qkv_kernel": weights[prefix + "qkv_kernel"],
        "batch_norm_qkv": bn("batch_norm_qkv"),
        "similarity_bn": dict(zip(terms, bn("batch_norm_similarity", terms))),
        "output_bn": dict(zip(retrieve, bn("batch_norm_retrieved_output", retrieve))),
    }
    for name in ("query_rpe", "key_rpe", "value_rpe"):
        if f"{prefix}{name}/embeddings" in weights:
            result[name] = weights[f"{prefix}{name}/embeddings"]
    return result


def oracle_block(weights, prefix, **kwargs):
    def bn(path):
        return {k: weights[f"{prefix}{path}/{k}"] for k in numpy_axial.BN_KEYS}
    result = {
        "conv1_kernel": weights[prefix + "conv1_bn_act/conv/kernel"],
        "conv1_bn": bn("conv1_bn_act/batch_norm"),
        "height": oracle_attention(weights, prefix + "attention/height_axis/", **kwargs),
        "width": oracle_attention(weights, prefix + "attention/width_axis/", **kwargs),
        "conv3_kernel": weights[prefix + "conv3_bn/conv/kernel"],
        "conv3_bn": bn("conv3_bn/batch_norm"),
    }
    if prefix + "shortcut/conv/kernel" in weights:
        result["shortcut_kernel"] = weights[prefix + "shortcut/conv/kernel"]
        result["shortcut_bn"] = bn("shortcut/batch_norm")
    return result


# --- random weights named as deeplab2 names them ----------------------------------------------

def bn_arrays(rng, prefix, shape):
    return {f"{prefix}/gamma": rng.uniform(0.5, 1.5, shape),
            f"{prefix}/beta": rng.normal(0, 0.1, shape),
            f"{prefix}/moving_mean": rng.normal(0, 0.1, shape),
            f"{prefix}/moving_variance": rng.uniform(0.5, 1.5, shape)}


def random_attention(rng, prefix, channels, key_depth, value_depth, heads, terms=TERMS,
                     retrieve=RETRIEVE):
    dk, dv = key_depth // heads, value_depth // heads
    arrays = {f"{prefix}qkv_kernel": rng.normal(0, channels ** -0.5,
                                               (channels, 2 * key_depth + value_depth))}
    arrays.update(bn_arrays(rng, prefix + "batch_norm_qkv", (2 * key_depth + value_depth,)))
    arrays.update(bn_arrays(rng, prefix + "batch_norm_similarity", (len(terms), 1, heads, 1, 1)))
    arrays.update(bn_arrays(rng, prefix + "batch_norm_retrieved_output",
                            (len(retrieve), 1, heads, 1, dv)))
    for name, depth, on in (("query_rpe", dk, "query_rpe" in terms),
                            ("key_rpe", dk, "key_rpe" in terms),
                            ("value_rpe", dv, "value_rpe" in retrieve)):
        if on:
            arrays[f"{prefix}{name}/embeddings"] = rng.normal(0, 1, (509, depth))
    return {k: v.astype("float32") for k, v in arrays.items()}


def random_block(rng, prefix, channels, filters_list, heads, key_expansion=1,
                 value_expansion=2):
    bottleneck, filters, output = filters_list
    key, value = filters * key_expansion, filters * value_expansion
    arrays = {f"{prefix}conv1_bn_act/conv/kernel":
              rng.normal(0, channels ** -0.5, (1, 1, channels, bottleneck)),
              f"{prefix}conv3_bn/conv/kernel": rng.normal(0, value ** -0.5, (1, 1, value, output))}
    arrays.update(bn_arrays(rng, prefix + "conv1_bn_act/batch_norm", (bottleneck,)))
    arrays.update(bn_arrays(rng, prefix + "conv3_bn/batch_norm", (output,)))
    if channels != output:
        arrays[f"{prefix}shortcut/conv/kernel"] = rng.normal(0, channels ** -0.5,
                                                             (1, 1, channels, output))
        arrays.update(bn_arrays(rng, prefix + "shortcut/batch_norm", (output,)))
    arrays.update(random_attention(rng, prefix + "attention/height_axis/", bottleneck, key,
                                   value, heads))
    arrays.update(random_attention(rng, prefix + "attention/width_axis/", value, key, value,
                                   heads))
    return {k: np.asarray(v, "float32") for k, v in arrays.items()}


# --- the fixtures -----------------------------------------------------------------------------

def test_oracle_matches_deeplab2_outputs_and_intermediates():
    _, data, weights = load_fixture("axial_attention_1d_height")
    oracle = oracle_attention(weights, "height_axis/")
    outputs, attention = numpy_axial.axial_attention_1d(data["input_1d"], oracle, 2,
                                                        return_weights=True)
    np.testing.assert_allclose(outputs, data["output_1d"], atol=4e-5)
    np.testing.assert_allclose(attention, data["intermediate_float64/attention_weights"],
                               atol=1e-6)
    np.testing.assert_array_equal(
        data["rpe_index_matrix"], np.arange(9)[None, :] - np.arange(9)[:, None] + 254)
    _, data, weights = load_fixture("axial_block_stride1")
    np.testing.assert_allclose(
        numpy_axial.axial_block(data["input"], oracle_block(weights, "block1/"), 2),
        data["output"], atol=4e-5)


@pytest.mark.parametrize("key", ["axial_attention_1d_height", "axial_block_stride1"])
def test_import_matches_deeplab2_fixture(key):
    spec, data, _ = load_fixture(key)
    raw = {k: data[k] for k in data.files if k.startswith("weights/")}  # "weights/" prefix
    class_name = spec["deeplab2_class"].rsplit(".", 1)[-1]
    layer = layer_from_deeplab2(class_name, spec["constructor_args"], raw)
    if class_name == "AxialAttention":
        np.testing.assert_allclose(layer(data["input_1d"], training=False), data["output_1d"],
                                   atol=1e-4)
        assert tuple(layer.query_rpe.shape) == (509, 8)
    else:
        np.testing.assert_allclose(layer(data["input"], training=False), data["output"],
                                   atol=1e-4)


# --- other configurations ---------------------------------------------------------------------

@pytest.mark.parametrize("heads, key_depth, value_depth, length, terms, retrieve", [
    (4, 16, 32, 20, TERMS, RETRIEVE),
    (1, 4, 8, 7, TERMS, RETRIEVE),
    (2, 8, 8, 13, ("content", "query_rpe"), ("content",)),
    (2, 8, 16, 11, ("key_rpe",), ("value_rpe",)),
])
def test_import_axial_attention_configurations(heads, key_depth, value_depth, length, terms,
                                               retrieve):
    rng = np.random.default_rng(length)
    weights = random_attention(rng, "encoder/stage3/block2/attention/width_axis/", 10, key_depth,
                               value_depth, heads, terms, retrieve)
    weights = {k + ":0": v for k, v in weights.items()}  # checkpoint-style names
    args = {"total_key_depth": key_depth, "total_value_depth": value_depth, "num_heads": heads,
            "query_shape": 129, "memory_flange": 32}
    for theirs, term in (("use_content_similarity", "content"),
                         ("use_query_rpe_similarity", "query_rpe"),
                         ("use_key_rpe_similarity", "key_rpe")):
        args[theirs] = term in terms
    args["retrieve_value_content"] = "content" in retrieve
    args["retrieve_value_rpe"] = "value_rpe" in retrieve
    layer = layer_from_deeplab2("AxialAttention", args, weights)
    x = rng.normal(size=(3, length, 10)).astype("float32")
    oracle = oracle_attention({k[:-2]: v for k, v in weights.items()},
                              "encoder/stage3/block2/attention/width_axis/", terms, retrieve)
    expected = numpy_axial.axial_attention_1d(x, oracle, heads, terms=terms, retrieve=retrieve)
    np.testing.assert_allclose(layer(x, training=False), expected, atol=1e-4)


@pytest.mark.parametrize("strides, shape", [(2, (2, 9, 8, 12)), (1, (1, 6, 10, 12))])
def test_import_axial_attention_2d(strides, shape):
    rng = np.random.default_rng(strides)
    weights = random_attention(rng, "attention/height_axis/", 12, 8, 16, 4)
    weights.update(random_attention(rng, "attention/width_axis/", 16, 8, 16, 4))
    layer = layer_from_deeplab2("AxialAttention2D", {"strides": strides, "filters": 8,
                                                      "num_heads": 4, "name": "attention"},
                                weights)
    x = rng.normal(size=shape).astype("float32")
    expected = numpy_axial.axial_attention_2d(
        x, oracle_attention(weights, "attention/height_axis/"),
        oracle_attention(weights, "attention/width_axis/"), 4, strides, "slice")
    np.testing.assert_allclose(layer(x, training=False), expected, atol=1e-4)


@pytest.mark.parametrize("channels, filters_list, strides, heads, shape", [
    (12, [16, 8, 32], 2, 4, (2, 11, 9)),   # projection shortcut, strided
    (32, [16, 8, 32], 1, 2, (1, 7, 10)),   # identity shortcut
    (32, [24, 8, 32], 2, 8, (1, 9, 9)),    # identity shortcut sliced ::2, bottleneck x3
])
def test_import_axial_block(channels, filters_list, strides, heads, shape):
    rng = np.random.default_rng(channels + strides)
    weights = random_block(rng, "backbone/stage2/block1/", channels, filters_list, heads)
    args = {"filters_list": filters_list, "strides": strides, "attention_type": "axial",
            "kernel_size": 3, "name": "block1", "activation": "relu",
            "drop_path_keep_prob": 0.8,
            "axial_layer_config": {"num_heads": heads, "key_expansion": 1, "value_expansion": 2,
                                   "query_shape": (129, 129), "memory_flange": (32, 32),
                                   "double_global_attention": False}}
    block = layer_from_deeplab2("AxialBlock", args, weights)
    assert block.drop_path_rate == pytest.approx(0.2)
    x = rng.normal(size=(*shape, channels)).astype("float32")
    expected = numpy_axial.axial_block(x, oracle_block(weights, "backbone/stage2/block1/"),
                                       heads, strides, "slice",
                                       projection=channels != filters_list[2])
    np.testing.assert_allclose(block(x, training=False), expected, atol=1e-4)


def test_import_with_a_local_span():
    rng = np.random.default_rng(5)
    weights = random_attention(rng, "", 6, 8, 8, 2)
    layer = layer_from_deeplab2("AxialAttention", {"total_key_depth": 8, "total_value_depth": 8,
                                                   "num_heads": 2}, weights, span=5)
    x = rng.normal(size=(2, 16, 6)).astype("float32")
    expected = numpy_axial.axial_attention_1d(x, oracle_attention(weights, ""), 2, span=5)
    np.testing.assert_allclose(layer(x, training=False), expected, atol=1e-4)


def test_import_errors():
    _, data, weights = load_fixture("axial_attention_1d_height")
    args = {"total_key_depth": 16, "total_value_depth": 32, "num_heads": 2}
    with pytest.raises(ValueError, match="class_name='GlobalAttention2D'"):
        layer_from_deeplab2("GlobalAttention2D", args, weights)
    with pytest.raises(ValueError, match="self_attention_activation='sigmoid'"):
        layer_from_deeplab2("AxialAttention", {**args, "self_attention_activation": "sigmoid"},
                            weights)
    with pytest.raises(ValueError, match="Unsupported deeplab2 AxialAttention arguments"):
        layer_from_deeplab2("AxialAttention", {**args, "heads": 2}, weights)
    missing = {k: v for k, v in weights.items() if not k.endswith("key_rpe/embeddings")}
    with pytest.raises(ValueError, match="'key_rpe/embeddings' is missing"):
        layer_from_deeplab2("AxialAttention", args, missing)
    with pytest.raises(ValueError, match=r"2 terms of 32 values, but the layer has 1"):
        layer_from_deeplab2("AxialAttention", {**args, "retrieve_value_rpe": False}, weights)
    extra = dict(weights, **{"height_axis/extra/kernel": np.zeros(3)})
    with pytest.raises(ValueError, match=r"not used by the imported layer: \['height_axis/extra"):
        layer_from_deeplab2("AxialAttention", args, extra)
    with pytest.raises(ValueError, match="has shape"):
        layer_from_deeplab2("AxialAttention", {**args, "num_heads": 4, "total_key_depth": 16},
                            weights)
    with pytest.raises(ValueError, match="attention_type='global'"):
        layer_from_deeplab2("AxialBlock", {"filters_list": [32, 16, 64],
                                           "attention_type": "global"}, weights)
