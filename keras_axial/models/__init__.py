"""Axial-ResNet backbones and classifiers, Axial-DeepLab, the variant table and the registry.

`list_models()`, `get_model(name, **overrides)` and `tiny_overrides(name)` are the entry points;
sizes live in `axial_resnet_variants` only.
"""

from keras_axial.models.axial_deeplab import AxialDeepLab, build_axial_deeplab
from keras_axial.models.axial_resnet_backbone import AxialResNetBackbone
from keras_axial.models.axial_resnet_classifier import (
    AxialResNetClassifier,
    build_axial_resnet_classifier,
)
from keras_axial.models.panoptic_deeplab_decoder import PanopticDeepLabDecoder
from keras_axial.models.panoptic_deeplab_head import PanopticDeepLabHead
from keras_axial.models.panoptic_prediction_resize import (
    PanopticPredictionResize,
    resize_panoptic_predictions,
)
from keras_axial.models.test_time_augmentation import (
    TestTimeAugmentation,
    apply_test_time_augmentation,
)
from keras_axial.models.registry import (
    allowed_overrides,
    get_model,
    get_variant,
    list_models,
    model_config,
    tiny_overrides,
)
