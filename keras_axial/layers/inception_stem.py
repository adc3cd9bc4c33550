"""The Inception (ResNet-beta) stem of Panoptic-DeepLab and Axial-DeepLab."""

import keras

from keras_axial.layers import _common
from keras_axial.layers._stem import ConvolutionStem


@keras.saving.register_keras_serializable(package="keras_axial")
class InceptionStem(ConvolutionStem):
    """Three 3x3 convolutions (the first with stride 2), each + BN + ReLU, then max-pool 3x3/2.

    Axial-DeepLab uses "exactly the same stem of three convolutions" as Panoptic-DeepLab:
    64 -> 64 -> 128 channels. `filters` sets the three widths so a variant can scale them.

    Args:
        filters: three ints, the widths of the three convolutions. Defaults to
            `(64, 64, 128)`.
        use_max_pool: bool, end with the 3x3 stride-2 max-pool (output stride 4; without it
            the stem has output stride 2 as in deeplab2). Defaults to `True`.
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
        `[batch, height / 4, width / 4, filters[2]]` (rounded up), ReLU-activated.

    Example:

    >>> stem = InceptionStem((32, 32, 64))
    >>> tuple(stem(np.zeros((1, 65, 65, 3), "float32")).shape)
    (1, 17, 17, 64)

    Reference:
        Cheng et al., "Panoptic-DeepLab", CVPR 2020; Wang et al., "Axial-DeepLab", ECCV 2020,
        Sec. 3.
    """

    def __init__(self, filters=(64, 64, 128), use_max_pool=True, batch_norm_momentum=0.99,
                 batch_norm_epsilon=1e-3, sync_batch_norm=False, kernel_initializer="he_normal",
                 kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = _common.check_int_tuple("filters", filters, 3, minimum=1)
        self.units = [("conv1", self.filters[0], 3, 2), ("conv2", self.filters[1], 3, 1),
                      ("conv3", self.filters[2], 3, 1)]
        self._finish_init(use_max_pool, batch_norm_momentum, batch_norm_epsilon, sync_batch_norm,
                          kernel_initializer, kernel_regularizer)

    def get_config(self):
        config = super().get_config()
        config["filters"] = list(self.filters)
        return config
