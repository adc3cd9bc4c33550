"""Private helpers shared by the layers: argument checks and batch-norm construction.

Every public layer validates its arguments in `__init__` with these helpers, so that all
messages have the same shape: the argument name, the value received, what was expected.
"""

import numbers

import keras

_LOW_PRECISION = ("float16", "bfloat16")


def check_int(name, value, minimum=None, allow_none=False, odd=False):
    """Returns `value` as an int after checking it (bools are rejected)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        expected = "an integer" + (" or None" if allow_none else "")
        raise TypeError(f"`{name}` must be {expected}. Received: {name}={value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. Received: {name}={value}")
    if odd and value % 2 == 0:
        raise ValueError(f"`{name}` must be odd. Received: {name}={value}")
    return value


def check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"`{name}` must be True or False. Received: {name}={value!r}")
    return value


def check_float(name, value, minimum=None, maximum=None, min_inclusive=True, max_inclusive=True):
    """Returns `value` as a float after checking the (optionally open) interval."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number. Received: {name}={value!r}")
    value = float(value)
    low_ok = minimum is None or (value >= minimum if min_inclusive else value > minimum)
    high_ok = maximum is None or (value <= maximum if max_inclusive else value < maximum)
    if not (low_ok and high_ok):
        low = "" if minimum is None else ("[" if min_inclusive else "(") + f"{minimum}"
        high = "" if maximum is None else f"{maximum}" + ("]" if max_inclusive else ")")
        raise ValueError(f"`{name}` must be in {low or '(-inf'}, {high or 'inf)'}. "
                         f"Received: {name}={value}")
    return value


def check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}. Received: {name}={value!r}")
    return value


def check_int_tuple(name, value, length, minimum=None):
    """Accepts a sequence of `length` ints; returns a tuple."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != length:
        raise ValueError(f"`{name}` must be a sequence of {length} integers. "
                         f"Received: {name}={value!r}")
    return tuple(check_int(f"{name}[{i}]", v, minimum=minimum) for i, v in enumerate(value))


def scaled_channels(name, filters, expansion):
    """`filters * expansion` as an int; the product must be a whole number of channels."""
    product = filters * expansion
    if abs(product - round(product)) > 1e-6 or round(product) < 1:
        raise ValueError(f"`{name}` times `filters` must be a positive whole number of channels. "
                         f"Received: filters={filters}, {name}={expansion} "
                         f"(product {product})")
    return int(round(product))


def check_batch_norm_args(momentum, epsilon, synchronized):
    check_float("batch_norm_momentum", momentum, 0.0, 1.0, max_inclusive=False)
    check_float("batch_norm_epsilon", epsilon, 0.0, min_inclusive=False)
    check_bool("sync_batch_norm", synchronized)
    if synchronized and keras.backend.backend() != "tensorflow":
        raise ValueError("`sync_batch_norm=True` needs the TensorFlow backend. Received: "
                         f"sync_batch_norm=True with KERAS_BACKEND={keras.backend.backend()!r}")


def batch_norm(name, momentum, epsilon, synchronized, axis=-1, gamma_initializer="ones",
               dtype=None):
    """A `keras.layers.BatchNormalization` with the injected settings."""
    return keras.layers.BatchNormalization(
        axis=axis,
        momentum=momentum,
        epsilon=epsilon,
        synchronized=synchronized,
        gamma_initializer=gamma_initializer,
        name=name,
        dtype=dtype,
    )


def float32_policy_for(dtype_policy):
    """The policy for sublayers that must compute in (at least) float32 under mixed precision."""
    if dtype_policy.compute_dtype in _LOW_PRECISION:
        return dtype_policy.variable_dtype
    return dtype_policy


def logits_dtype(compute_dtype):
    """Attention logits and softmax run in float32 when the layer computes in 16 bits."""
    return "float32" if compute_dtype in _LOW_PRECISION else compute_dtype


def conv_output_length(length, stride):
    """Output length of a 'same'-padded strided op (also `None` for unknown lengths)."""
    if length is None:
        return None
    return -(-length // stride)
