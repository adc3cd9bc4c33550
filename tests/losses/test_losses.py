"""Panoptic losses against hand-computed values on tiny tensors."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_axial.losses import PanopticLoss
from keras_axial.losses import WeightedBootstrappedCrossEntropy
from keras_axial.losses import WeightedL1
from keras_axial.losses import WeightedMeanSquaredError


def two_class_logits(margins):
    """Logits [1, 1, N, 2] whose class-0 cross-entropy is log(1 + exp(-margin)) per pixel."""
    margins = np.asarray(margins, np.float32)
    return np.stack([margins, np.zeros_like(margins)], axis=-1)[None, None]


def ce(margin):
    return math.log1p(math.exp(-margin))


def panoptic_example(batch=2, height=4, width=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    targets = {
        "semantic": rng.integers(0, classes, (batch, height, width)).astype("int32"),
        "semantic_weights": rng.choice([0.0, 1.0, 3.0], (batch, height, width)).astype("float32"),
        "center_heatmap": rng.uniform(size=(batch, height, width, 1)).astype("float32"),
        "center_weights": rng.choice([0.0, 1.0], (batch, height, width)).astype("float32"),
        "offsets": rng.normal(size=(batch, height, width, 2)).astype("float32"),
        "offset_weights": rng.choice([0.0, 1.0], (batch, height, width)).astype("float32"),
    }
    predictions = {
        "semantic_logits": rng.normal(size=(batch, height, width, classes)).astype("float32"),
        "center_heatmap": rng.uniform(size=(batch, height, width, 1)).astype("float32"),
        "offsets": rng.normal(size=(batch, height, width, 2)).astype("float32"),
    }
    return targets, predictions


def test_bootstrapped_cross_entropy_keeps_the_hardest_weighted_pixels():
    # 5 pixels, K = round(0.4 * 5) = 2. Weighted losses: ce(0)*1, ce(2)*3, ce(-3)*0 (weight 0),
    # ce(1)*1, ce(4)*1; the two largest are ce(2)*3 and ce(0)*1.
    logits = two_class_logits([0.0, 2.0, -3.0, 1.0, 4.0])
    labels = np.zeros((1, 1, 5), "int32")
    weights = np.array([[[1.0, 3.0, 0.0, 1.0, 1.0]]], "float32")
    loss = WeightedBootstrappedCrossEntropy(top_k_percent=0.4)
    expected = (3 * ce(2.0) + ce(0.0)) / 2
    assert float(loss(labels, logits, sample_weight=weights)) == pytest.approx(expected, rel=1e-6)
    # top_k_percent=1: every pixel, divided by the 4 non-zero terms (the weight-0 one is not).
    everything = WeightedBootstrappedCrossEntropy(top_k_percent=1.0)
    expected = (ce(0.0) + 3 * ce(2.0) + ce(1.0) + ce(4.0)) / 4
    assert float(everything(labels, logits, sample_weight=weights)) == pytest.approx(
        expected, rel=1e-6
    )


def test_bootstrapped_cross_entropy_counts_only_non_zero_kept_terms():
    # K = round(0.6 * 5) = 3 but only two pixels have a non-zero weight: divide by 2.
    logits = two_class_logits([0.0, 1.0, 2.0, 3.0, 4.0])
    weights = np.array([[[0.0, 1.0, 0.0, 1.0, 0.0]]], "float32")
    loss = WeightedBootstrappedCrossEntropy(top_k_percent=0.6)
    value = loss(np.zeros((1, 1, 5), "int32"), logits, sample_weight=weights)
    assert float(value) == pytest.approx((ce(1.0) + ce(3.0)) / 2, rel=1e-6)


def test_ignore_label_overrides_weights_and_all_void_image_gives_zero_and_finite_gradients():
    logits = np.concatenate([two_class_logits([-5.0, 1.0]), two_class_logits([0.0, 0.0])])
    labels = np.array([[[255, 0]], [[255, 255]]], "int32")  # image 2 is all void
    loss = WeightedBootstrappedCrossEntropy(top_k_percent=1.0, reduction="none")
    per_image = loss(labels, logits, sample_weight=np.ones((2, 1, 2), "float32"))
    np.testing.assert_allclose(per_image, [ce(1.0), 0.0], rtol=1e-6)

    variable = tf.Variable(logits)
    with tf.GradientTape() as tape:
        value = WeightedBootstrappedCrossEntropy(top_k_percent=0.5)(labels, variable)
    gradient = tape.gradient(value, variable).numpy()
    assert float(value) == pytest.approx(ce(1.0) / 2, rel=1e-6)
    assert np.isfinite(gradient).all() and not gradient[1].any() and not gradient[0, 0, 0].any()


def test_top_k_uses_round_half_to_even_in_float32_and_at_least_one_pixel():
    # 0.25 * 10 = 2.5 -> 2 (half to even); 0.01 * 10 = 0.1 -> 0 -> clamped to 1.
    margins = np.arange(10, dtype="float32")  # losses decrease with the margin
    labels = np.zeros((1, 1, 10), "int32")
    quarter = WeightedBootstrappedCrossEntropy(top_k_percent=0.25)
    assert float(quarter(labels, two_class_logits(margins))) == pytest.approx(
        (ce(0) + ce(1)) / 2, rel=1e-6
    )
    tiny = WeightedBootstrappedCrossEntropy(top_k_percent=0.01)
    assert float(tiny(labels, two_class_logits(margins))) == pytest.approx(ce(0), rel=1e-6)


def test_center_and_offset_losses_average_over_non_zero_weighted_terms():
    target = np.zeros((1, 2, 2, 1), "float32")
    prediction = np.array([[[[1.0], [2.0]], [[0.0], [3.0]]]], "float32")  # errors 1, 4, 0, 9
    weights = np.array([[[1.0, 1.0], [1.0, 0.0]]], "float32")  # the 9 is weighted out
    # Non-zero weighted terms: 1 and 4 (the third pixel has weight 1 but zero error).
    assert float(WeightedMeanSquaredError()(target, prediction, weights)) == pytest.approx(2.5)

    offsets = np.zeros((1, 1, 3, 2), "float32")
    predicted = np.array([[[[1.0, 3.0], [-2.0, 0.0], [5.0, 5.0]]]], "float32")
    weights = np.array([[[1.0, 2.0, 0.0]]], "float32")
    # Per pixel: mean(|1|, |3|) = 2, mean(2, 0) = 1 (x2), third weighted out -> (2 + 2) / 2.
    assert float(WeightedL1()(offsets, predicted, weights)) == pytest.approx(2.0)


def test_panoptic_loss_is_the_weighted_sum_of_per_image_terms():
    targets, predictions = panoptic_example()
    loss = PanopticLoss()
    values = loss.components(targets, predictions)

    semantic = WeightedBootstrappedCrossEntropy(top_k_percent=0.2)(
        targets["semantic"], predictions["semantic_logits"], targets["semantic_weights"]
    )
    center = WeightedMeanSquaredError()(
        targets["center_heatmap"], predictions["center_heatmap"], targets["center_weights"]
    )
    offset = WeightedL1()(targets["offsets"], predictions["offsets"], targets["offset_weights"])
    np.testing.assert_allclose(
        [values["semantic_loss"], values["center_loss"], values["offset_loss"]],
        [semantic, center, offset],
        rtol=1e-6,
    )
    expected_total = float(semantic) + 200.0 * float(center) + 0.01 * float(offset)
    assert float(values["total_loss"]) == pytest.approx(expected_total, rel=1e-6)
    assert float(loss(targets, predictions)) == pytest.approx(expected_total, rel=1e-6)

    per_image = PanopticLoss(reduction="none")(targets, predictions)
    assert per_image.shape == (2,)
    weighted = PanopticLoss()(targets, predictions, sample_weight=np.array([1.0, 0.0]))
    assert float(weighted) == pytest.approx(float(per_image[0]) / 2, rel=1e-6)


def test_semantic_term_by_hand():
    # 1 image of 2 x 5 pixels, 3 classes: K = round(0.2 * 10) = 2.
    logits = np.zeros((1, 2, 5, 3), "float32")
    logits[0, 0, 0] = [0.0, 0.0, 4.0]  # label 0: the hardest pixel, weight 3
    logits[0, 1, 4] = [0.0, 2.0, 0.0]  # label 0: second hardest, but void
    logits[0, 1, 3] = [0.0, 1.0, 0.0]  # label 0: kept with the first
    targets, predictions = panoptic_example(batch=1, height=2, width=5)
    targets["semantic"] = np.zeros((1, 2, 5), "int32")
    targets["semantic"][0, 1, 4] = 255
    targets["semantic_weights"] = np.ones((1, 2, 5), "float32")
    targets["semantic_weights"][0, 0, 0] = 3.0
    predictions["semantic_logits"] = logits
    hardest = 3 * (math.log(2 + math.exp(4.0)) - 0.0)
    second = math.log(2 + math.exp(1.0))
    value = PanopticLoss().components(targets, predictions)["semantic_loss"]
    assert float(value) == pytest.approx((hardest + second) / 2, rel=1e-6)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_predictions_are_computed_in_float32(dtype):
    targets, predictions = panoptic_example()
    low = {key: tf.cast(value, dtype) for key, value in predictions.items()}
    as_float32 = {key: tf.cast(value, "float32") for key, value in low.items()}
    loss = PanopticLoss()
    values = loss.components(targets, low)
    reference = loss.components(targets, as_float32)
    for key in values:
        assert values[key].dtype == "float32"
        assert float(values[key]) == pytest.approx(float(reference[key]), rel=1e-6)


def test_graph_and_xla_with_unknown_shapes_match_eager():
    targets, predictions = panoptic_example(batch=3, height=6, width=7, classes=4)
    loss = PanopticLoss(top_k_percent=0.3)
    eager = float(loss(targets, predictions))
    signature = (
        {
            "semantic": tf.TensorSpec([None, None, None], tf.int32),
            "semantic_weights": tf.TensorSpec([None, None, None], tf.float32),
            "center_heatmap": tf.TensorSpec([None, None, None, 1], tf.float32),
            "center_weights": tf.TensorSpec([None, None, None], tf.float32),
            "offsets": tf.TensorSpec([None, None, None, 2], tf.float32),
            "offset_weights": tf.TensorSpec([None, None, None], tf.float32),
        },
        {
            "semantic_logits": tf.TensorSpec([None, None, None, 4], tf.float32),
            "center_heatmap": tf.TensorSpec([None, None, None, 1], tf.float32),
            "offsets": tf.TensorSpec([None, None, None, 2], tf.float32),
        },
    )
    graph = tf.function(lambda t, p: loss(t, p), input_signature=signature)
    xla = tf.function(lambda t, p: loss(t, p), jit_compile=True)
    assert float(graph(targets, predictions)) == pytest.approx(eager, rel=1e-6)
    assert float(xla(targets, predictions)) == pytest.approx(eager, rel=1e-5)


def test_missing_keys_and_bad_arguments_raise_clear_errors():
    targets, predictions = panoptic_example()
    del targets["offset_weights"]
    with pytest.raises(ValueError, match="offset_weights"):
        PanopticLoss()(targets, predictions)
    with pytest.raises(ValueError, match="top_k_percent"):
        PanopticLoss(top_k_percent=0.0)
    with pytest.raises(ValueError, match="center_weight"):
        PanopticLoss(center_weight=-1.0)
    with pytest.raises(TypeError, match="ignore_label"):
        WeightedBootstrappedCrossEntropy(ignore_label=1.5)
    with pytest.raises(ValueError, match="same shape"):
        WeightedL1()(np.zeros((1, 2, 2, 2)), np.zeros((1, 2, 2, 1)))


@pytest.mark.parametrize(
    "loss",
    [
        PanopticLoss(center_weight=100.0, top_k_percent=0.5, ignore_label=None, name="p"),
        WeightedBootstrappedCrossEntropy(top_k_percent=0.3, ignore_label=0, reduction="sum"),
        WeightedMeanSquaredError(reduction="none"),
        WeightedL1(name="offset_l1"),
    ],
    ids=lambda loss: type(loss).__name__,
)
def test_serialization_round_trip(loss):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
