"""keras-axial: Axial-DeepLab and Axial-ResNets for TensorFlow / Keras 3."""

import pathlib
import sys

import setuptools

HERE = pathlib.Path(__file__).parent

FAST_DECODING_PLATFORMS = (
    '(platform_system == "Linux" and platform_machine == "x86_64")'
    ' or (platform_system == "Darwin" and platform_machine == "arm64")'
    ' or platform_system == "Windows"'
)

# Versions are pinned: the stack below is the one the test suite runs on.
INSTALL_REQUIRES = [
    "tensorflow==2.21.0",
    "keras==3.15.1",
    "gin-config==0.5.0",
    "absl-py==2.5.1",
    "numpy==2.4.6",
    "pillow==13.0.0",
    "pycocotools==2.0.11",
    "matplotlib==3.11.2",
    # libspng decodes panoptic PNGs twice as fast as Pillow, and zlib-ng inflates them ~15x
    # faster than zlib (for the C pair counter below): PQ evaluation speed only. Only where
    # wheels exist; elsewhere Pillow and zlib do the work (keras_axial/evaluation/).
    "pyspng==0.1.4; " + FAST_DECODING_PLATFORMS,
    "zlib-ng==1.1.0; " + FAST_DECODING_PLATFORMS,
    # tf.summary (training logs) needs TensorBoard's summary ops; TensorFlow 2.21 no longer pulls it in.
    "tensorboard==2.21.0",
]

EXTRAS_REQUIRE = {
    # Runs TFLite models (tf.lite.Interpreter is deprecated).
    "litert": ["ai-edge-litert==2.3.0"],
    "dev": [
        "pytest==9.2.0",
        "pytest-xdist==3.8.0",
        "psutil==7.2.2",
        # Executes the notebooks in notebooks/ as part of the test suite.
        "nbclient==0.11.0",
        "nbformat==5.11.1",
        "ipykernel==7.4.0",
        "ai-edge-litert==2.3.0",
    ],
}

# The C pair counter of the COCO panoptic evaluator (keras_axial/evaluation/_pair_counts.c):
# optional, so that an install without a C compiler still works (numpy does the counting then,
# about 3x slower).
EXTENSIONS = [
    setuptools.Extension(
        "keras_axial.evaluation._pair_counts",
        ["keras_axial/evaluation/_pair_counts.c"],
        extra_compile_args=["-O3"] if sys.platform != "win32" else ["/O2"],
        optional=True,
    )
]

setuptools.setup(
    name="keras-axial",
    version="0.1.0",
    description="Axial-DeepLab and Axial-ResNets (Wang et al., ECCV 2020) for TensorFlow / Keras 3.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=setuptools.find_packages(include=["keras_axial", "keras_axial.*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    ext_modules=EXTENSIONS,
    license="Apache-2.0",
)
