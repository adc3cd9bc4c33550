"""Fixtures of the evaluation tests."""

import pytest
from panoptic_test_data import built_pair_counter
from panoptic_test_data import random_dataset
from panoptic_test_data import write_coco_folders


@pytest.fixture(scope="session")
def coco_folders(tmp_path_factory):
    """A generated COCO panoptic ground truth / prediction pair of folders (24 images)."""
    pairs = random_dataset(seed=7, num_images=24)
    root = tmp_path_factory.mktemp("coco_panoptic")
    paths = write_coco_folders(str(root), pairs)
    return paths, pairs


@pytest.fixture(params=["c", "numpy"])
def counter(request, monkeypatch):
    """Runs a test with the C pair counter and with the numpy gathers, in the COCO evaluator
    and the streaming metric (in this process: workers started by forkserver import the
    modules afresh)."""
    from keras_axial.evaluation import coco_panoptic
    from keras_axial.evaluation import panoptic_quality

    if request.param == "c":
        built_pair_counter()
    else:
        monkeypatch.setattr(coco_panoptic, "_pair_counts", None)
        monkeypatch.setattr(panoptic_quality, "_pair_counts", None)
    return request.param
