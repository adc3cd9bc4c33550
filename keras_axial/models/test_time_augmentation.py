"""Multi-scale and horizontal-flip test-time augmentation for panoptic models."""

import numbers

import keras
from keras import ops

from keras_axial.layers import resize_bilinear_aligned
from keras_axial.models.panoptic_prediction_resize import resize_panoptic_predictions
from keras_axial.utils.model_statistics import count_madds

# Floor of averaged probabilities before the log (float32 keeps ~1e-38; stay clear of it).
_MIN_PROBABILITY = 1e-30


def apply_test_time_augmentation(model, images, scales=(1.0,), flip=False, training=False):
    """Averages a panoptic model's predictions over input scales and horizontal flips.

    For every scale `s` the images are resized (bilinear, aligned corners) to
    `round((size - 1) * s) + 1` pixels per axis, which keeps `16k + 1` sizes of that form for the
    paper's scales; with `flip`, the mirrored images run in the same batch. Each prediction is
    resized back to the input size (offsets rescaled with the resize); mirrored predictions are
    mirrored back and their `dx` negated. Then semantic softmax probabilities, center heatmaps
    and offsets are averaged (SPEC section 6.6; the paper's multi-scale setting is scales
    0.5..1.5 step 0.25 (COCO) or up to 2.0 (Mapillary), with flips).

    Args:
        model: a panoptic model returning `{"semantic_logits", "center_heatmap", "offsets"}` at
            its input resolution (e.g. `AxialDeepLab`).
        images: float `[batch, height, width, 3]` pixels in [0, 255].
        scales: positive floats, the input scales. Defaults to `(1.0,)`.
        flip: bool, also run horizontally mirrored inputs. Defaults to `False`.
        training: bool, passed to the model. Defaults to `False`.

    Returns:
        A dict of float32 tensors at the input resolution, with the model's keys:
        `"semantic_logits"` holds the log of the averaged probabilities (so `softmax` and
        `argmax` of it give the averaged probabilities and their argmax, as post-processing
        expects), `"center_heatmap"` and `"offsets"` the averages.

    Example:
        >>> outputs = apply_test_time_augmentation(model, images, (0.75, 1.0, 1.25), flip=True)
    """
    scales = _check_scales(scales)
    flip = _check_flip(flip)
    size = _spatial_size(images)
    totals = None
    for scale in scales:
        scaled = images if scale == 1.0 else resize_bilinear_aligned(
            images, _scaled_size(size, scale)
        )
        if flip:
            scaled = ops.concatenate([scaled, ops.flip(scaled, axis=2)], axis=0)
        outputs = resize_panoptic_predictions(model(scaled, training=training), size)
        outputs["semantic_logits"] = ops.softmax(outputs["semantic_logits"], axis=-1)
        if flip:
            outputs = {key: _merge_flipped(key, value) for key, value in outputs.items()}
        totals = outputs if totals is None else {
            key: totals[key] + value for key, value in outputs.items()
        }
    passes = float(len(scales) * (2 if flip else 1))
    averaged = {key: value / passes for key, value in totals.items()}
    averaged["semantic_logits"] = ops.log(
        ops.maximum(averaged["semantic_logits"], _MIN_PROBABILITY)
    )
    return averaged


def _merge_flipped(key, value):
    """Sum of the direct half and the mirrored-back half of a `[2 * batch, ...]` tensor."""
    direct, mirrored = ops.split(value, 2, axis=0)
    mirrored = ops.flip(mirrored, axis=2)
    if key == "offsets":
        # Mirroring maps an offset (dy, dx) to (dy, -dx).
        mirrored = mirrored * ops.convert_to_tensor([1.0, -1.0], dtype=mirrored.dtype)
    return direct + mirrored


def _spatial_size(images):
    if len(images.shape) != 4:
        raise ValueError(
            "Test-time augmentation expects images [batch, height, width, 3]. Received: "
            f"images.shape={tuple(images.shape)}"
        )
    shape = ops.shape(images)
    return shape[1], shape[2]


def _scaled_size(size, scale):
    """`round((n - 1) * scale) + 1` per axis (Python ints when the size is static)."""
    def scaled(length):
        if isinstance(length, int):
            return max(1, int(round((length - 1) * scale)) + 1)
        steps = ops.round(ops.cast(length - 1, "float32") * scale)
        return ops.maximum(ops.cast(steps, "int32") + 1, 1)

    return scaled(size[0]), scaled(size[1])


def _check_scales(scales):
    if isinstance(scales, numbers.Real):
        scales = (scales,)
    if (
        isinstance(scales, (str, bytes))
        or not hasattr(scales, "__len__")
        or len(scales) == 0
        or any(isinstance(s, bool) or not isinstance(s, numbers.Real) or s <= 0 for s in scales)
    ):
        raise ValueError(
            "`scales` must be a non-empty sequence of positive numbers, e.g. "
            f"(0.5, 0.75, 1.0, 1.25, 1.5). Received: scales={scales!r}"
        )
    return tuple(float(s) for s in scales)


def _check_flip(flip):
    if not isinstance(flip, bool):
        raise ValueError(f"`flip` must be True or False. Received: flip={flip!r}")
    return flip


@keras.saving.register_keras_serializable(package="keras_axial")
class TestTimeAugmentation(keras.Model):
    """A panoptic model wrapped with multi-scale and flip averaging.

    See `apply_test_time_augmentation` for what is averaged and how. The wrapper behaves like
    the model it wraps (same input, same output dict, `num_classes`), so evaluation, export and
    post-processing take it unchanged; it saves to and loads from `.keras` files.

    Args:
        model: the panoptic model (e.g. an `AxialDeepLab`).
        scales: positive floats, the input scales. Defaults to `(1.0,)`.
        flip: bool, also average horizontally mirrored inputs. Defaults to `True`.
        **kwargs: `keras.Model` arguments (`name`, ...).

    Call arguments:
        images: float `[batch, height, width, 3]` pixels in [0, 255].
        training: bool. Defaults to `False`.

    Returns:
        The averaged `{"semantic_logits", "center_heatmap", "offsets"}` (float32, input size);
        `"semantic_logits"` are log-probabilities.

    Example:

    >>> model = keras_axial.models.get_model("axial_deeplab_l")
    >>> multi_scale = TestTimeAugmentation(model, scales=(0.5, 0.75, 1.0, 1.25, 1.5))
    >>> outputs = multi_scale(images)

    Reference:
        Cheng et al., "Panoptic-DeepLab", CVPR 2020; Wang et al., "Axial-DeepLab", ECCV 2020,
        Sec. 4 (multi-scale inference, made possible by the fixed local span).
    """

    # Not a pytest test class, whatever its name.
    __test__ = False

    def __init__(self, model, scales=(1.0,), flip=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(model, keras.Model):
            raise TypeError(
                f"`model` must be a keras.Model. Received: model of type {type(model).__name__}"
            )
        self.model = model
        self.scales = _check_scales(scales)
        self.flip = _check_flip(flip)
        if hasattr(model, "num_classes"):
            self.num_classes = model.num_classes

    def call(self, images, training=False):
        return apply_test_time_augmentation(
            self.model, images, self.scales, self.flip, training=training
        )

    def compute_output_spec(self, images, training=False):
        batch, height, width = images.shape[:3]
        spec = self.model.compute_output_spec(images)
        return {
            key: keras.KerasTensor((batch, height, width, value.shape[-1]), dtype="float32")
            for key, value in spec.items()
        }

    def compute_madds(self, input_shape):
        """The wrapped model's multiply-adds at every scale, twice with flips."""
        batch, height, width, channels = tuple(input_shape)
        passes = 2 if self.flip else 1
        return sum(
            count_madds(
                self.model,
                (batch * passes, *_scaled_size((height, width), scale), channels),
            )
            for scale in self.scales
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "model": keras.saving.serialize_keras_object(self.model),
                "scales": list(self.scales),
                "flip": self.flip,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)
