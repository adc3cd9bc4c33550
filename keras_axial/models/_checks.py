"""Private argument checks and batch-norm construction shared by the models' layers.

Messages name the argument, quote the value received and say what was expected.
"""

import numbers

import keras


def positive_int(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        expected = "a positive integer" + (" or None" if allow_none else "")
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")
    return int(value)


def positive_ints(name, values, length=None):
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise ValueError(f"`{name}` must be a sequence of positive integers. "
                         f"Received: {name}={values!r}")
    if length is not None and len(values) != length:
        raise ValueError(f"`{name}` must hold {length} positive integers. "
                         f"Received: {name}={values!r}")
    return tuple(positive_int(f"{name}[{i}]", value) for i, value in enumerate(values))


def positive_float(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        expected = "a positive number" + (" or None" if allow_none else "")
        raise ValueError(f"`{name}` must be {expected}. Received: {name}={value!r}")
    return float(value)


def rate(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"`{name}` must be a number in [0, 1). Received: {name}={value!r}")
    return float(value)


def string(name, value):
    if not isinstance(value, str) or not value:
        raise ValueError(f"`{name}` must be a non-empty string. Received: {name}={value!r}")
    return value


def choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}. Received: {name}={value!r}")
    return value


def batch_norm_settings(momentum, epsilon, synchronized):
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) or not (
        0 <= momentum < 1
    ):
        raise ValueError("`batch_norm_momentum` must be a number in [0, 1). "
                         f"Received: batch_norm_momentum={momentum!r}")
    positive_float("batch_norm_epsilon", epsilon)
    if not isinstance(synchronized, bool):
        raise ValueError("`sync_batch_norm` must be True or False. "
                         f"Received: sync_batch_norm={synchronized!r}")
    if synchronized and keras.backend.backend() != "tensorflow":
        raise ValueError("`sync_batch_norm=True` needs the TensorFlow backend. Received: "
                         f"sync_batch_norm=True with KERAS_BACKEND={keras.backend.backend()!r}")


def set_batch_norm_settings(layer, momentum, epsilon, synchronized):
    """Validates the injected batch-norm settings and stores them on `layer`."""
    batch_norm_settings(momentum, epsilon, synchronized)
    layer.batch_norm_momentum = float(momentum)
    layer.batch_norm_epsilon = float(epsilon)
    layer.sync_batch_norm = synchronized


def batch_norm_config(layer):
    """The stored batch-norm settings, under their constructor names."""
    return {
        "batch_norm_momentum": layer.batch_norm_momentum,
        "batch_norm_epsilon": layer.batch_norm_epsilon,
        "sync_batch_norm": layer.sync_batch_norm,
    }


def model_config(model, **fields):
    """`get_config` of a functional model subclass built from its constructor arguments; a
    `backbone` field is serialized (and `from_model_config` deserializes it)."""
    if "backbone" in fields:
        fields["backbone"] = keras.saving.serialize_keras_object(fields["backbone"])
    return {"name": model.name, "trainable": model.trainable, **fields}


def from_model_config(cls, config):
    config = dict(config)
    if "backbone" in config:
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
    return cls(**config)


def batch_norm(layer, name):
    """A batch norm with the settings stored on `layer` (`batch_norm_momentum`, ...)."""
    return keras.layers.BatchNormalization(
        momentum=layer.batch_norm_momentum,
        epsilon=layer.batch_norm_epsilon,
        synchronized=layer.sync_batch_norm,
        name=name,
        dtype=layer.dtype_policy,
    )


def feature_shapes(owner, input_shape, keys):
    """Checks a dict of `[batch, height, width, channels]` shapes holds `keys`."""
    if not isinstance(input_shape, dict):
        raise ValueError(f"{owner} expects a dict of feature maps with keys {list(keys)}. "
                         f"Received: input_shape={input_shape!r}")
    missing = [key for key in keys if key not in input_shape]
    if missing:
        raise ValueError(f"{owner} needs the feature maps {list(keys)}; {missing} are missing. "
                         f"Received keys: {sorted(input_shape)}")
    shapes = {key: tuple(input_shape[key]) for key in keys}
    for key, shape in shapes.items():
        if len(shape) != 4 or shape[-1] is None:
            raise ValueError(f"{owner}: feature map {key!r} must be [batch, height, width, "
                             f"channels] with known channels. Received: {shape}")
    return shapes
