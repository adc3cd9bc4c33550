"""The settings of `panoptic_deeplab_postprocess`, as one validated, JSON-friendly value."""

import dataclasses

from keras_axial.postprocessing.panoptic_deeplab import panoptic_deeplab_postprocess
from keras_axial.postprocessing.panoptic_deeplab import validate_postprocessing_arguments


@dataclasses.dataclass(frozen=True)
class PostProcessingConfig:
    """Post-processing settings, validated once; what export bakes into a graph.

    Fields are the keyword arguments of `panoptic_deeplab_postprocess`. Values used by
    deeplab2 and the Panoptic-DeepLab paper: Cityscapes `nms_kernel=13, stuff_area_limit=2048`;
    COCO `nms_kernel=41, stuff_area_limit=4096`; the paper's default `nms_kernel=7`;
    `center_threshold=0.1` and `keep_k_centers=200` everywhere (deeplab2 keeps 400).

    Args:
        thing_class_ids: sequence of ints, the semantic ids of thing classes.
        label_divisor: int, panoptic = semantic * label_divisor + instance.
        void_label: int, the semantic id written for void pixels.
        center_threshold: float. Defaults to 0.1.
        nms_kernel: odd int. Defaults to 7.
        keep_k_centers: int, smaller than `label_divisor`. Defaults to 200.
        stuff_area_limit: int. Defaults to 4096.

    Example:

    >>> config = PostProcessingConfig(thing_class_ids=[11, 12], label_divisor=1000,
    ...                               void_label=255, nms_kernel=13, stuff_area_limit=2048)
    >>> config.as_kwargs()["thing_class_ids"]
    [11, 12]
    >>> PostProcessingConfig(**config.as_kwargs()) == config
    True
    """

    thing_class_ids: tuple
    label_divisor: int
    void_label: int
    center_threshold: float = 0.1
    nms_kernel: int = 7
    keep_k_centers: int = 200
    stuff_area_limit: int = 4096

    def __post_init__(self):
        settings = validate_postprocessing_arguments(num_classes=None, **self._fields())
        for key, value in settings.items():
            object.__setattr__(self, key, value)

    def _fields(self):
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @classmethod
    def from_dataset_spec(cls, spec, **overrides):
        """Takes `thing_class_ids`, `label_divisor` and `void_label` (the spec's `ignore_label`)
        from a `keras_axial.data.DatasetSpec` (or anything with those attributes)."""
        values = dict(
            thing_class_ids=spec.thing_class_ids,
            label_divisor=spec.label_divisor,
            void_label=spec.ignore_label,
        )
        values.update(overrides)
        return cls(**values)

    def as_kwargs(self):
        """The settings as plain Python values (JSON-serialisable), for
        `panoptic_deeplab_postprocess(..., **config.as_kwargs())`."""
        kwargs = self._fields()
        kwargs["thing_class_ids"] = list(self.thing_class_ids)
        return kwargs

    def __call__(self, predictions):
        """Post-processes a model's output dict (`"semantic_logits"`, `"center_heatmap"`,
        `"offsets"`); returns the dict of `panoptic_deeplab_postprocess`."""
        keys = ("semantic_logits", "center_heatmap", "offsets")
        missing = [key for key in keys if key not in predictions]
        if missing:
            raise ValueError(
                f"PostProcessingConfig: `predictions` lacks {missing}. "
                f"Received keys: {sorted(predictions)}"
            )
        return panoptic_deeplab_postprocess(
            predictions["semantic_logits"],
            predictions["center_heatmap"],
            predictions["offsets"],
            **self.as_kwargs(),
        )
