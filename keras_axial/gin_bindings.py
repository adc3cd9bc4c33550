"""The one place where keras-axial meets gin.

Library classes never import gin (a `@gin.configurable` Keras Layer or Model breaks Keras
serialization); instead the public builders are registered here with `gin.external_configurable`,
so every gin file in `gin/` can name them. Import this module (the training and export entry points
do) before parsing gin files.

Each part of the package owns one section below.
"""

import gin

# --- models -------------------------------------------------------------------------------------

# --- data ---------------------------------------------------------------------------------------

# --- losses and post-processing -----------------------------------------------------------------

# --- training -----------------------------------------------------------------------------------

# --- export -------------------------------------------------------------------------------------
