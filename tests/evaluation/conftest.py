"""Fixtures of the evaluation tests."""

import pytest
from panoptic_test_data import random_dataset
from panoptic_test_data import write_coco_folders


@pytest.fixture(scope="session")
def coco_folders(tmp_path_factory):
    """A generated COCO panoptic ground truth / prediction pair of folders (24 images)."""
    pairs = random_dataset(seed=7, num_images=24)
    root = tmp_path_factory.mktemp("coco_panoptic")
    paths = write_coco_folders(str(root), pairs)
    return paths, pairs
