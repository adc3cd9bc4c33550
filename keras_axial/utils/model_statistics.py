"""Parameter and multiply-add (M-Adds) counting, with the paper's counting rules.

Counting rules (the ones behind the Axial-DeepLab paper's tables and deeplab2's unit tests):

- **Parameters** are trainable weights only: batch-norm moving means and variances are not
  parameters (deeplab2's parameter counts, which the paper's tables match, count trainable
  variables).
- **M-Adds** are the multiply-adds of convolutions, dense layers and attention (its algorithmic
  cost: every query of a span-`m` local attention is charged `m` keys, whatever blocking the kernel
  uses), for one call on the given input shape, batch dimension included. Bias additions, batch
  norms, activations, pooling, element-wise sums, concatenations and resizes are free, as in the
  paper's M-Adds columns.
- Layers of `keras_axial` implement `compute_madds(input_shape)`; the Keras built-ins listed in
  `_BUILTIN_MADDS` are counted here by formula; functional models are walked node by node with
  concrete shapes. A layer with weights that is neither raises a `TypeError` rather than being
  silently counted as free.
"""

import math

import keras
import numpy as np
from keras import tree

# Keras layers that cost no multiply-adds under the counting rules above.
_FREE_LAYERS = tuple(
    getattr(keras.layers, name)
    for name in (
        "InputLayer",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "Softmax",
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "UnitNormalization",
        "Normalization",
        "Rescaling",
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "GaussianNoise",
        "Identity",
        "Add",
        "Subtract",
        "Multiply",
        "Average",
        "Maximum",
        "Minimum",
        "Concatenate",
        "Reshape",
        "Flatten",
        "Permute",
        "RepeatVector",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "Cropping1D",
        "Cropping2D",
        "UpSampling1D",
        "UpSampling2D",
        "Resizing",
        "MaxPooling1D",
        "MaxPooling2D",
        "AveragePooling1D",
        "AveragePooling2D",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "Lambda",
    )
    if hasattr(keras.layers, name)
)


def count_params(model, trainable_only=True):
    """Counts the parameters of a built Keras layer or model.

    Args:
        model: a built `keras.layers.Layer` (a `keras.Model` included).
        trainable_only: count trainable weights only (the paper's convention: batch-norm moving
            statistics are not parameters). `False` counts every weight. Defaults to `True`.

    Returns:
        The number of scalars, as a Python int.

    Example:
        >>> model = keras_axial.models.get_model("axial_resnet_s")
        >>> count_params(model)  # ~12.3M (paper: 12.4M)
    """
    if not isinstance(model, keras.layers.Layer):
        raise TypeError(
            f"count_params expects a Keras layer or model. Received: model of type "
            f"{type(model).__name__}."
        )
    if not model.built:
        raise ValueError(
            f"count_params needs a built model, but {model.name!r} is not built yet: call it on "
            "an input (or build it) first."
        )
    weights = model.trainable_weights if trainable_only else model.weights
    return int(sum(math.prod(weight.shape) for weight in weights))


def count_madds(layer, input_shape):
    """Counts the multiply-adds of one call of a layer or model on `input_shape`.

    Args:
        layer: a Keras layer or model. Layers defining `compute_madds(input_shape)` (all
            `keras_axial` layers and models) are asked; Keras convolutions, depthwise / separable
            convolutions, `Dense` and `EinsumDense` are counted by formula; functional and
            sequential models are walked layer by layer.
        input_shape: the full input shape, batch dimension included (a tuple of ints, or a
            list / dict of them for multi-input models). Every dimension must be known.

    Returns:
        The number of multiply-adds, as a Python int (see the module docstring for what counts).

    Example:
        >>> model = keras_axial.models.get_model("axial_resnet_s")
        >>> count_madds(model, (1, 224, 224, 3)) / 1e9  # ~2.6 (paper: 2.8)
    """
    _check_concrete(input_shape, "input_shape")
    return _layer_madds(layer, _as_tuples(input_shape))


def madds_breakdown(model, input_shape):
    """Multiply-adds of each top-level layer of a functional model, in graph order.

    Args:
        model: a functional `keras.Model` (all `keras_axial` models are functional).
        input_shape: the full input shape, batch dimension included.

    Returns:
        A dict `{layer_name: madds}`; its values sum to `count_madds(model, input_shape)`.

    Example:
        >>> madds_breakdown(model, (1, 1025, 1025, 3))["semantic_decoder"]
    """
    _check_concrete(input_shape, "input_shape")
    if not _is_functional(model):
        raise TypeError(
            f"madds_breakdown expects a functional Keras model. Received: {type(model).__name__} "
            f"{getattr(model, 'name', '')!r}."
        )
    breakdown = {}
    _walk_functional(model, _as_tuples(input_shape), breakdown)
    return breakdown


def functional_madds(model, input_shape):
    """Multiply-adds of a functional model, summed over the layers of its graph.

    The building block for `compute_madds` of functional `keras_axial` models (they cannot call
    `count_madds` on themselves, which would ask their own `compute_madds` again).

    Args:
        model: a functional `keras.Model`.
        input_shape: the full input shape, batch dimension included.

    Returns:
        The number of multiply-adds, as a Python int.
    """
    _check_concrete(input_shape, "input_shape")
    return sum(_walk_functional(model, _as_tuples(input_shape), {}).values())


# ----------------------------------------------------------------------------------------------


def _check_concrete(input_shape, argument):
    dims = tree.flatten(input_shape)
    if not dims or not all(isinstance(d, (int, np.integer)) and d > 0 for d in dims):
        raise ValueError(
            f"{argument} must be fully known positive integers, batch dimension included, e.g. "
            f"(1, 224, 224, 3). Received: {argument}={input_shape!r}."
        )


def _as_tuples(input_shape):
    if isinstance(input_shape, dict):
        return {key: _as_tuples(value) for key, value in input_shape.items()}
    if isinstance(input_shape, (list, tuple)) and input_shape and not isinstance(
        input_shape[0], (int, np.integer)
    ):
        return [_as_tuples(value) for value in input_shape]
    return tuple(int(d) for d in input_shape)


def _is_functional(layer):
    # Keras has no public test for "functional"; these two attributes are what its graph
    # execution (`Function._run_through_graph`) relies on.
    return hasattr(layer, "_run_through_graph") and hasattr(layer, "_nodes_by_depth")


def _layer_madds(layer, input_shape):
    own = getattr(layer, "compute_madds", None)
    if callable(own):
        return int(own(input_shape))
    for layer_class, formula in _BUILTIN_MADDS:
        if isinstance(layer, layer_class):
            return int(formula(layer, input_shape))
    if isinstance(layer, keras.Sequential):
        total, shape = 0, input_shape
        for sublayer in layer.layers:
            total += _layer_madds(sublayer, shape)
            shape = tuple(sublayer.compute_output_shape(shape))
        return total
    if _is_functional(layer):
        return sum(_walk_functional(layer, input_shape, {}).values())
    if isinstance(layer, _FREE_LAYERS) or not layer.weights:
        return 0
    raise TypeError(
        f"Cannot count the multiply-adds of layer {layer.name!r} ({type(layer).__name__}): it has "
        "weights but defines no `compute_madds(input_shape)` and is not a Keras built-in known "
        "to keras_axial.utils.count_madds. Add a `compute_madds` method to it."
    )


def _walk_functional(model, input_shape, breakdown):
    """Runs the model's graph on symbolic tensors of concrete shape, charging each layer."""
    if isinstance(input_shape, dict):
        flat_shapes = [input_shape[tensor.name] for tensor in model.inputs]
    elif isinstance(input_shape, list):
        flat_shapes = input_shape
    else:
        flat_shapes = [input_shape]
    if len(flat_shapes) != len(model.inputs):
        raise ValueError(
            f"Model {model.name!r} has {len(model.inputs)} inputs; input_shape gives "
            f"{len(flat_shapes)}. Received: input_shape={input_shape!r}."
        )
    symbolic_inputs = [
        keras.KerasTensor(shape, dtype=reference.dtype)
        for shape, reference in zip(flat_shapes, model.inputs)
    ]

    def operation_fn(operation):
        def run(*args, **kwargs):
            if isinstance(operation, keras.layers.Layer) and not isinstance(
                operation, keras.layers.InputLayer
            ):
                layer_input = args[0] if len(args) == 1 else list(args)
                layer_shape = tree.map_structure(lambda t: tuple(t.shape), layer_input)
                madds = _layer_madds(operation, layer_shape)
                breakdown[operation.name] = breakdown.get(operation.name, 0) + madds
            return operation.compute_output_spec(*args, **kwargs)

        return run

    model._run_through_graph(symbolic_inputs, operation_fn=operation_fn)
    return breakdown


def _spatial_output_elements(layer, input_shape):
    output_shape = layer.compute_output_shape(input_shape)
    if layer.data_format == "channels_first":
        return output_shape[0] * math.prod(output_shape[2:])
    return math.prod(output_shape[:-1])


def _input_channels(layer, input_shape):
    return input_shape[1] if layer.data_format == "channels_first" else input_shape[-1]


def _conv_madds(layer, input_shape):
    kernel = math.prod(layer.kernel_size)
    channels_in = _input_channels(layer, input_shape)
    return _spatial_output_elements(layer, input_shape) * kernel * channels_in // layer.groups * (
        layer.filters
    )


def _conv_transpose_madds(layer, input_shape):
    channels_in = _input_channels(layer, input_shape)
    spatial = (
        input_shape[0] * math.prod(input_shape[2:])
        if layer.data_format == "channels_first"
        else math.prod(input_shape[:-1])
    )
    return spatial * math.prod(layer.kernel_size) * channels_in * layer.filters


def _depthwise_madds(layer, input_shape):
    channels_in = _input_channels(layer, input_shape)
    return (
        _spatial_output_elements(layer, input_shape)
        * math.prod(layer.kernel_size)
        * channels_in
        * layer.depth_multiplier
    )


def _separable_madds(layer, input_shape):
    channels_in = _input_channels(layer, input_shape)
    intermediate = channels_in * layer.depth_multiplier
    return _spatial_output_elements(layer, input_shape) * (
        math.prod(layer.kernel_size) * intermediate + intermediate * layer.filters
    )


def _dense_madds(layer, input_shape):
    return math.prod(input_shape[:-1]) * input_shape[-1] * layer.units


def _einsum_dense_madds(layer, input_shape):
    # Every output element is a dot product over the input axes that the equation contracts.
    # Dimension sizes come from the input where the equation names them there, else the kernel
    # (the layer's own output shape keeps the unknown dimensions it was built with).
    equation_inputs, equation_output = layer.equation.split("->")
    input_spec, kernel_spec = equation_inputs.split(",")
    if "." in layer.equation:
        raise TypeError(
            f"Cannot count the multiply-adds of EinsumDense {layer.name!r}: equations with "
            f"ellipses are not supported. Received: equation={layer.equation!r}."
        )
    sizes = dict(zip(kernel_spec, layer.kernel.shape))
    sizes.update(zip(input_spec, input_shape))
    contracted = [c for c in input_spec if c in kernel_spec and c not in equation_output]
    return math.prod(sizes[c] for c in equation_output) * math.prod(sizes[c] for c in contracted)


_BUILTIN_MADDS = (
    # Order matters: separable / depthwise / transposed convolutions subclass the base conv.
    (keras.layers.SeparableConv1D, _separable_madds),
    (keras.layers.SeparableConv2D, _separable_madds),
    (keras.layers.DepthwiseConv1D, _depthwise_madds),
    (keras.layers.DepthwiseConv2D, _depthwise_madds),
    (keras.layers.Conv1DTranspose, _conv_transpose_madds),
    (keras.layers.Conv2DTranspose, _conv_transpose_madds),
    (keras.layers.Conv3DTranspose, _conv_transpose_madds),
    (keras.layers.Conv1D, _conv_madds),
    (keras.layers.Conv2D, _conv_madds),
    (keras.layers.Conv3D, _conv_madds),
    (keras.layers.Dense, _dense_madds),
    (keras.layers.EinsumDense, _einsum_dense_madds),
)
