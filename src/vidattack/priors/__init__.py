"""Priors that black-box attacks build on: V-BAD's tentative perturbations and partitions.

* :mod:`vidattack.priors.tentative`: static / random / transferred (image-model) tentative
  perturbations (V-BAD Sec. 3.3, Eq. 3);
* :mod:`vidattack.priors.partition`: uniform / random / pixel partitions of a video's dimensions into
  rectification parts (V-BAD Sec. 3.4), as index tensors;
* :mod:`vidattack.priors.saliency`: spectral-residual saliency masks (Heuristic, spatial sparsity);
* :mod:`vidattack.priors.frame_importance`: per-frame importance by removal (Heuristic Alg. 1).

The last two are imported on use (OpenCV is only needed by the saliency prior).
"""

from vidattack.priors.partition import (
    PARTITIONS,
    Partition,
    make_partition,
    partition_pixel,
    partition_random,
    partition_uniform,
    random_grid_offset,
)
from vidattack.priors.tentative import (
    TENTATIVES,
    TransferredTentative,
    make_tentative,
    prepare_image_models,
    tentative_random,
    tentative_static,
)

__all__ = [
    "PARTITIONS",
    "Partition",
    "make_partition",
    "partition_pixel",
    "partition_random",
    "partition_uniform",
    "random_grid_offset",
    "TENTATIVES",
    "TransferredTentative",
    "prepare_image_models",
    "make_tentative",
    "tentative_random",
    "tentative_static",
]
