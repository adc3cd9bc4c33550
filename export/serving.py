"""The `tf.Module`s that become exported SavedModels: signatures, input checks, padding.

An Axial-DeepLab export has two signatures:

- `serving_default`: uint8 images `[batch, height, width, 3]` (any batch, any size) ->
  `panoptic`, `semantic`, `instance` int32 `[batch, height, width]`, `instance_scores` float32
  and `instance_panoptic_ids` int32 `[batch, keep_k_centers]`, `center_heatmap` float32
  `[batch, height, width, 1]`. The post-processing settings are constants of the graph.
- `network`: float32 images `[batch, height, width, 3]` in 0..255 -> the raw
  `semantic_logits`, `center_heatmap` and `offsets` at the input size.

Both pad the images at the bottom and right to the next valid size (`16k + 1` at output stride
16) with the mean pixel 127.5 (0 after the model's normalisation), run the network and crop the
predictions back. Offsets are distances in pixels, which padding (unlike resizing) leaves
unchanged, so cropping is all they need; the post-processing then sees exactly the image, and
stuff areas are counted on real pixels only.

A classifier export has `serving_default` (uint8 images -> `probabilities` `[batch, classes]`)
and `network` (float32 images -> `logits`), at the image's own size: classifiers pool globally,
so padding would change their answer.

Every signature checks its input inside the graph (rank 4, 3 channels, non-empty) and fails
with a message that names the signature, the expected shape and the shape received; a wrong
dtype is rejected by TensorFlow before the graph runs ("expected to be a uint8 tensor but is a
float tensor").
"""

import dataclasses
import types

import numpy as np
import tensorflow as tf

# The mean pixel: 0 after `x / 127.5 - 1`, the models' normalisation.
PAD_VALUE = 127.5

# The post-processing arguments an export bakes in (keras_axial.postprocessing).
POSTPROCESSING_KEYS = (
    "thing_class_ids",
    "label_divisor",
    "void_label",
    "center_threshold",
    "nms_kernel",
    "keep_k_centers",
    "stuff_area_limit",
)

PANOPTIC_OUTPUTS = (
    "panoptic",
    "semantic",
    "instance",
    "instance_scores",
    "instance_panoptic_ids",
    "center_heatmap",
)
NETWORK_OUTPUTS = ("semantic_logits", "center_heatmap", "offsets")


@dataclasses.dataclass(frozen=True)
class SizeRule:
    """The image sizes a network runs at without misaligned strides: `multiple * k + 1`.

    Axial-DeepLab at output stride 16 is aligned on `16k + 1` sizes (17, 33, ..., 513, 1025):
    every strided layer then maps corner pixels onto corner pixels, which is what the
    aligned-corners resizes of the decoder assume.

    Args:
        multiple: the network's largest stride (its output stride). Defaults to `16`.
        minimum: the smallest size padded to. Defaults to `multiple + 1`.

    Example:
        >>> SizeRule(16).next_valid(500)
        513
    """

    multiple: int = 16
    minimum: int = None

    def __post_init__(self):
        if isinstance(self.multiple, bool) or not isinstance(self.multiple, (int, np.integer)) \
                or self.multiple < 1:
            raise ValueError(
                f"`multiple` must be a positive int. Received: multiple={self.multiple!r}"
            )
        minimum = self.multiple + 1 if self.minimum is None else self.minimum
        if isinstance(minimum, bool) or not isinstance(minimum, (int, np.integer)) \
                or minimum < 1 or (minimum - 1) % self.multiple:
            raise ValueError(
                f"`minimum` must be a valid size ({self.multiple}k + 1, k >= 0). "
                f"Received: minimum={minimum!r}"
            )
        object.__setattr__(self, "multiple", int(self.multiple))
        object.__setattr__(self, "minimum", int(minimum))

    def next_valid(self, length):
        """The smallest valid size `>= length` (a Python int, or a scalar int32 tensor)."""
        if isinstance(length, (int, np.integer)):
            size = -(-(int(length) - 1) // self.multiple) * self.multiple + 1
            return max(size, self.minimum)
        size = ((length - 1 + self.multiple - 1) // self.multiple) * self.multiple + 1
        return tf.maximum(size, self.minimum)

    def is_valid(self, length):
        return length >= self.minimum and (length - 1) % self.multiple == 0

    def describe(self):
        return f"{self.multiple}k + 1, at least {self.minimum}"

    def to_dict(self):
        return {"multiple": self.multiple, "minimum": self.minimum,
                "rule": f"size = {self.multiple} * k + 1 >= {self.minimum}"}


def size_rule_for(model):
    """The `SizeRule` of an Axial-DeepLab model: its backbone's output stride.

    Returns None for models without a `backbone.output_stride` (they run at the image size).
    """
    output_stride = getattr(getattr(model, "backbone", None), "output_stride", None)
    return None if output_stride is None else SizeRule(int(output_stride))


def check_images(images, signature, dtype_name):
    """Asserts rank 4, 3 channels and a non-empty image; returns `images` behind the check.

    The rank is counted from the runtime shape vector (`tf.rank` would be folded to the
    signature's static rank 4 and check nothing).
    """
    shape = tf.shape(images)
    rank = tf.reduce_sum(tf.cast(shape >= 0, tf.int32))
    valid = tf.logical_and(tf.equal(rank, 4), tf.equal(shape[-1], 3))
    valid = tf.logical_and(valid, tf.reduce_all(shape[1:3] > 0))
    check = tf.debugging.Assert(
        valid,
        [
            f"Signature '{signature}' expects {dtype_name} images of shape "
            "[batch, height, width, 3] (rank 4, 3 channels, height and width >= 1). "
            "Received shape:",
            shape,
        ],
        summarize=16,
    )
    with tf.control_dependencies([check]):
        return tf.identity(images)


def pad_images(images, size_rule):
    """Pads float images at the bottom and right to the next valid size with `PAD_VALUE`.

    Returns `(padded, height, width)` where height and width are the original sizes.
    """
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    if size_rule is None:
        return images, height, width
    padded_height = size_rule.next_valid(height)
    padded_width = size_rule.next_valid(width)
    padding = [[0, 0], [0, padded_height - height], [0, padded_width - width], [0, 0]]
    padded = tf.pad(images, padding, constant_values=PAD_VALUE)
    # Dynamic paddings hide the channel count from shape inference, and TFLite convolutions
    # need it static (tf.ensure_shape would do, but it is not a TFLite builtin).
    padded = tf.reshape(padded, tf.stack([shape[0], padded_height, padded_width, 3]))
    return padded, height, width


def _crop(tensor, height, width):
    return tensor[:, :height, :width]


class _ExportModule(tf.Module):
    """What both export roots share: weights, metadata asset, the two signature functions.

    Subclasses implement `_serve(uint8 images)` and `_network(float32 images)`.
    """

    def __init__(self, model, metadata_path):
        super().__init__(name="keras_axial_export")
        # A closure, not an attribute: a tracked Keras model makes tf.saved_model.save trace
        # and save every layer's own functions, which multiplies the export time.
        self._call_model = lambda images: model(images, training=False)
        # The tf.Variables behind the Keras variables: tracking the Keras wrappers instead
        # makes the TFLite converter keep every weight as a mutable resource variable.
        self.model_weights = [variable.value for variable in model.weights]
        if metadata_path is not None:
            self.metadata_file = tf.saved_model.Asset(str(metadata_path))
        # Not tracked attributes (a plain namespace): tracked tf.functions would be traced again
        # by tf.saved_model.save; only their concrete functions are saved, as signatures.
        self._functions = types.SimpleNamespace(
            serve=tf.function(
                self._serve,
                autograph=False,
                input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")],
            ),
            network=tf.function(
                self._network,
                autograph=False,
                input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32,
                                               name="images")],
            ),
        )

    def signatures(self):
        """`{"serving_default": ..., "network": ...}` concrete functions (traced here)."""
        return {
            "serving_default": self._functions.serve.get_concrete_function(),
            "network": self._functions.network.get_concrete_function(),
        }


class PanopticExportModule(_ExportModule):
    """The SavedModel root of an Axial-DeepLab export (see the module docstring).

    Args:
        model: a Keras model returning `{"semantic_logits", "center_heatmap", "offsets"}`.
        postprocessing: dict of `keras_axial.postprocessing.panoptic_deeplab_postprocess`
            arguments (`POSTPROCESSING_KEYS`), baked into `serving_default`.
        size_rule: `SizeRule` the images are padded to; None runs at the image size.
            Defaults to `size_rule_for(model)`.
        metadata_path: optional file saved as a SavedModel asset (`keras_axial_export.json`).
            Defaults to `None`.

    Attributes:
        model_weights: the model's variables in `model.weights` order, so that a loaded export
            can fill a freshly built Keras model (`export.verify` does).
    """

    def __init__(self, model, postprocessing, size_rule="auto", metadata_path=None):
        from keras_axial.postprocessing import panoptic_deeplab_postprocess

        missing = sorted(set(POSTPROCESSING_KEYS) - set(postprocessing))
        unknown = sorted(set(postprocessing) - set(POSTPROCESSING_KEYS))
        if missing or unknown:
            raise ValueError(
                f"`postprocessing` must have exactly the keys {list(POSTPROCESSING_KEYS)}. "
                f"Missing: {missing}; unknown: {unknown}."
            )
        super().__init__(model, metadata_path)
        settings = dict(postprocessing)
        self._postprocess = lambda logits, heatmap, offsets: panoptic_deeplab_postprocess(
            logits, heatmap, offsets, **settings)
        self.size_rule = size_rule_for(model) if size_rule == "auto" else size_rule

    def _run_network(self, images):
        padded, height, width = pad_images(images, self.size_rule)
        outputs = self._call_model(padded)
        return {key: _crop(tf.cast(outputs[key], tf.float32), height, width)
                for key in NETWORK_OUTPUTS}

    def _network(self, images):
        images = check_images(images, "network", "float32")
        return self._run_network(images)

    def _serve(self, images):
        images = check_images(images, "serving_default", "uint8")
        outputs = self._run_network(tf.cast(images, tf.float32))
        result = self._postprocess(
            outputs["semantic_logits"],
            outputs["center_heatmap"],
            outputs["offsets"],
        )
        result = {key: result[key] for key in PANOPTIC_OUTPUTS if key in result}
        result["center_heatmap"] = outputs["center_heatmap"]
        return result


class ClassifierExportModule(_ExportModule):
    """The SavedModel root of a classifier export: probabilities and logits at the image size.

    Args:
        model: a Keras model returning logits `[batch, num_classes]`.
        metadata_path: optional file saved as a SavedModel asset. Defaults to `None`.
    """

    def __init__(self, model, metadata_path=None):
        super().__init__(model, metadata_path)
        self.size_rule = None

    def _logits(self, images):
        return tf.cast(self._call_model(images), tf.float32)

    def _network(self, images):
        return {"logits": self._logits(check_images(images, "network", "float32"))}

    def _serve(self, images):
        images = check_images(images, "serving_default", "uint8")
        return {"probabilities": tf.nn.softmax(self._logits(tf.cast(images, tf.float32)))}
