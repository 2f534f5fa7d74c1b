"""Which modality a plan normalises for: the metadata's, else CT when values are Hounsfield units."""

import numpy as np

from medsight.image import Image
from medsight.tasks.modality import modality_of


def test_metadata_names_the_modality_and_hounsfield_air_means_ct():
    tagged = [Image(np.zeros((1, 4, 4, 4)), metadata={"modality": "MR"}) for _ in range(2)]
    assert modality_of(tagged, lowest=-1024) == "MR"  # what the files say wins
    assert modality_of([Image(np.zeros((1, 4, 4, 4)))], lowest=-1024) == "CT"
    assert modality_of([Image(np.zeros((1, 4, 4, 4)))], lowest=-3.5) is None  # z-scored MR, not HU
    assert modality_of([Image(np.zeros((1, 4, 4, 4)))], lowest=0) is None
