"""Post-processing: Panoptic-DeepLab predictions -> panoptic / semantic / instance maps + scores."""

from keras_axial.postprocessing.panoptic_deeplab import panoptic_deeplab_postprocess
from keras_axial.postprocessing.panoptic_deeplab import scores_by_segment
from keras_axial.postprocessing.postprocessing_config import PostProcessingConfig

__all__ = ["PostProcessingConfig", "panoptic_deeplab_postprocess", "scores_by_segment"]
