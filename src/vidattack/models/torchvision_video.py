"""torchvision's video models: the video ResNets of Tran et al. 2018 (R3D-18, MC3-18, R(2+1)D-18),
S3D (Xie et al. 2018), MViT-v2-S (Li et al. 2022) and Swin3D-T (Liu et al. 2022).

They are always constructed with ``weights=None`` (nothing is ever downloaded); pretrained weights,
e.g. torchvision's Kinetics-400 checkpoints fetched by the user beforehand, are read from a local file
with :func:`vidattack.models.weights.load_state_dict_file` (safetensors, or a ``torch.save`` state
dict loaded with ``weights_only=True``). Inputs are ``[N, C, T, H, W]`` normalised with the Kinetics
statistics; the reference recipes use 16x112x112 clips for the ResNets and 16x224x224 for S3D and
MViT, whose pooling and position embeddings need that size; Swin3D takes any size divisible by its
2x4x4 patches and 7x7 windows (it pads).
"""

from __future__ import annotations

from torch import nn

__all__ = ["TORCHVISION_VIDEO_ARCHS", "build_torchvision_video"]

TORCHVISION_VIDEO_ARCHS = ("r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v2_s", "swin3d_t")


def build_torchvision_video(arch: str, num_classes: int = 400, weights_path: str | None = None) -> nn.Module:
    """Build torchvision's ``arch`` (one of :data:`TORCHVISION_VIDEO_ARCHS`) with ``weights=None``.

    Args:
        arch: ``"r3d_18"``, ``"mc3_18"``, ``"r2plus1d_18"``, ``"s3d"``, ``"mvit_v2_s"`` or ``"swin3d_t"``.
        num_classes: size of the classifier (400 for torchvision's Kinetics-400 weights).
        weights_path: optional local weights file for the whole network (keys as torchvision's).

    Raises:
        ValueError: unknown ``arch``, or a weights file whose keys/shapes do not fit.
    """
    from torchvision.models import video

    if arch not in TORCHVISION_VIDEO_ARCHS:
        raise ValueError(f"arch must be one of {TORCHVISION_VIDEO_ARCHS}, got {arch!r}")
    net = getattr(video, arch)(weights=None, num_classes=num_classes)
    if weights_path is not None:
        from vidattack.models.weights import load_state_dict_file, load_state_dict_into

        load_state_dict_into(net, load_state_dict_file(weights_path), source=weights_path)
    return net
