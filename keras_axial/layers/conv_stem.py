"""The ResNet stem: 7x7 stride-2 convolution, BN, ReLU, 3x3 stride-2 max-pool."""

import keras

from keras_axial.layers import _common
from keras_axial.layers._stem import ConvolutionStem


@keras.saving.register_keras_serializable(package="keras_axial")
class ConvStem(ConvolutionStem):
    """The ImageNet Axial-ResNet stem (paper, ResNet): conv kxk/2 + BN + ReLU + max-pool 3x3/2.

    Output stride 4 with the max-pool (2 without). 'Same' padding, so an odd `16k + 1` input
    gives `8k + 1` then `4k + 1` positions, aligned with the input corners.

    Args:
        filters: int, output channels. Defaults to `64`.
        kernel_size: int, convolution size. Defaults to `7`.
        strides: int, convolution stride. Defaults to `2`.
        use_max_pool: bool, end with the 3x3 stride-2 max-pool. Defaults to `True`.
        batch_norm_momentum: float. Defaults to `0.99`.
        batch_norm_epsilon: float. Defaults to `1e-3`.
        sync_batch_norm: bool. Defaults to `False`.
        kernel_initializer: Defaults to `"he_normal"`.
        kernel_regularizer: Defaults to `None`.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: `[batch, height, width, channels]` (normalized images).
        training: bool.

    Returns:
        `[batch, height / 4, width / 4, filters]` (rounded up), ReLU-activated.

    Example:

    >>> stem = ConvStem(64)
    >>> tuple(stem(np.zeros((1, 224, 224, 3), "float32")).shape)
    (1, 56, 56, 64)

    Reference:
        He et al., "Deep Residual Learning for Image Recognition", CVPR 2016; Wang et al.,
        "Axial-DeepLab", ECCV 2020, Sec. 4.1.
    """

    def __init__(self, filters=64, kernel_size=7, strides=2, use_max_pool=True,
                 batch_norm_momentum=0.99, batch_norm_epsilon=1e-3, sync_batch_norm=False,
                 kernel_initializer="he_normal", kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = _common.check_int("filters", filters, minimum=1)
        self.kernel_size = _common.check_int("kernel_size", kernel_size, minimum=1)
        self.strides = _common.check_int("strides", strides, minimum=1)
        self.units = [("conv", self.filters, self.kernel_size, self.strides)]
        self._finish_init(use_max_pool, batch_norm_momentum, batch_norm_epsilon, sync_batch_norm,
                          kernel_initializer, kernel_regularizer)

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "kernel_size": self.kernel_size,
                       "strides": self.strides})
        return config
