"""Video and image models behind vidattack's one layout.

* :func:`load` -- a shipped model by name (``"c3d-synth"``, see :func:`list_models`) or a checkpoint path;
* :func:`build` -- any architecture by registry name (``c3d``, ``i3d``, ``lrcn``, ``r3d_18``, ``mc3_18``,
  ``r2plus1d_18``, ``r2plus1d``, ``image_small``, ``resnet18``, ...), random or file weights;
* :func:`save` / :func:`load_checkpoint` -- safetensors + JSON checkpoints, no code execution;
* :func:`train` / :func:`evaluate` -- training and accuracy on tensors or datasets;
* :class:`VideoClassifier` -- ``[N, T, C, H, W]`` in [0, 1] -> logits ``[N, K]`` (normalisation and layout
  inside); :class:`ImageBackbone` -- ``[B, C, H, W]`` in [0, 1] -> logits, ``features``, ``embed``.
"""

from __future__ import annotations

from vidattack.models.checkpoint import UnsafeCheckpointError, read_metadata, save
from vidattack.models.checkpoint import load as load_checkpoint
from vidattack.models.image import ImageBackbone
from vidattack.models.registry import ARCHS, IMAGE_ARCHS, VIDEO_ARCHS, build
from vidattack.models.train import TrainReport, evaluate, train
from vidattack.models.wrapper import VideoClassifier
from vidattack.models.zoo import ZOO_DIR, is_zoo_name, list_models, load

__all__ = [
    "ARCHS",
    "IMAGE_ARCHS",
    "VIDEO_ARCHS",
    "ZOO_DIR",
    "ImageBackbone",
    "TrainReport",
    "UnsafeCheckpointError",
    "VideoClassifier",
    "build",
    "evaluate",
    "is_zoo_name",
    "list_models",
    "load",
    "load_checkpoint",
    "read_metadata",
    "save",
    "train",
]
