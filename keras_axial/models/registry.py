"""The model registry: every named model of keras-axial, built from the variant table.

`get_model(name, **overrides)` resolves `task defaults + backbone defaults + the variant's row +
overrides`, validates the override names, logs the resolved configuration and builds the model.
Tests, notebooks, the demo and gin files all go through it, so a new row in
`axial_resnet_variants.VARIANTS` is a new registered, tested model.
"""

import logging

from keras_axial.models import axial_resnet_variants

_LOGGER = logging.getLogger("keras_axial.models")


def list_models(task=None):
    """Names of the registered models, sorted.

    Args:
        task: None (all), `"classifier"` or `"panoptic"`. Defaults to `None`.

    Returns:
        A sorted list of names, e.g. `["axial_deeplab_l", ..., "full_axial_resnet_50"]`.

    Example:
        >>> keras_axial.models.list_models("panoptic")
        ['axial_deeplab_l', 'axial_deeplab_m', 'axial_deeplab_s', 'axial_deeplab_xl']
    """
    if task is not None and task not in axial_resnet_variants.TASK_DEFAULTS:
        raise ValueError(
            f"`task` must be None or one of {sorted(axial_resnet_variants.TASK_DEFAULTS)}. "
            f"Received: task={task!r}"
        )
    return sorted(
        name
        for name, variant in axial_resnet_variants.VARIANTS.items()
        if task is None or variant.task == task
    )


def get_variant(name):
    """The `ModelVariant` row of a registered model (its task, changes and paper numbers).

    Args:
        name: a registered name (see `list_models()`).

    Returns:
        An `axial_resnet_variants.ModelVariant`.
    """
    if not isinstance(name, str) or name not in axial_resnet_variants.VARIANTS:
        raise ValueError(
            f"Unknown model name {name!r}. Registered models: {', '.join(list_models())}."
        )
    return axial_resnet_variants.VARIANTS[name]


def model_config(name, **overrides):
    """The resolved configuration `get_model(name, **overrides)` builds from.

    Args:
        name: a registered name (see `list_models()`).
        **overrides: values replacing the table's (any key of `allowed_overrides(name)`).

    Returns:
        A dict `{argument: value}` of every builder argument, sorted by key (loggable).

    Example:
        >>> model_config("axial_deeplab_s")["span"]
        65
    """
    variant = get_variant(name)
    allowed = allowed_overrides(name)
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ValueError(
            f"Unknown override(s) {unknown} for model {name!r}. Allowed overrides: "
            f"{', '.join(allowed)}."
        )
    config = {
        **axial_resnet_variants.BACKBONE_DEFAULTS,
        **axial_resnet_variants.TASK_DEFAULTS[variant.task],
        **variant.changes,
        **overrides,
    }
    return dict(sorted(config.items()))


def allowed_overrides(name):
    """The argument names `get_model(name, ...)` accepts, sorted."""
    variant = get_variant(name)
    return sorted(
        {**axial_resnet_variants.BACKBONE_DEFAULTS,
         **axial_resnet_variants.TASK_DEFAULTS[variant.task]}
    )


def tiny_overrides(name):
    """Overrides giving a seconds-to-build version of a registered model.

    The tiny model has the same structure (stem, spans, strides, decoder, heads) with one block
    per stage, 1/8 of the width and small decoder channels, for tests, notebooks and the demo.

    Args:
        name: a registered name (see `list_models()`).

    Returns:
        A dict to pass on: `get_model(name, **tiny_overrides(name))`.

    Example:
        >>> model = get_model("axial_deeplab_s", **tiny_overrides("axial_deeplab_s"))
    """
    return dict(get_variant(name).tiny_changes)


def get_model(name, **overrides):
    """Builds a registered model.

    Args:
        name: a registered name (see `list_models()`), e.g. `"axial_deeplab_l"`.
        **overrides: values replacing the variant table's: backbone arguments
            (`width_multiplier`, `span`, `max_span`, `output_stride`, `drop_path_rate`,
            `batch_norm_momentum`, `batch_norm_epsilon`, `sync_batch_norm`, ...) and task
            arguments (`num_classes`, decoder channels, ...); see `allowed_overrides(name)`.
            The dtype policy is Keras' global one (`keras.mixed_precision.set_global_policy`).

    Returns:
        A `keras.Model`: an `AxialResNetClassifier` (classifiers) or an `AxialDeepLab`
        (panoptic models).

    Example:
        >>> model = keras_axial.models.get_model("axial_deeplab_s", num_classes=133)
        >>> outputs = model(np.zeros((1, 257, 257, 3), "float32"))
        >>> outputs["semantic_logits"].shape
        (1, 257, 257, 133)
    """
    config = model_config(name, **overrides)
    _LOGGER.info("Building %s with %s", name, config)
    variant = get_variant(name)
    # Imported here: the builders import the layers, the table and registry do not.
    if variant.task == "classifier":
        from keras_axial.models.axial_resnet_classifier import build_axial_resnet_classifier

        return build_axial_resnet_classifier(name=name, **config)
    from keras_axial.models.axial_deeplab import build_axial_deeplab

    return build_axial_deeplab(name=name, **config)
