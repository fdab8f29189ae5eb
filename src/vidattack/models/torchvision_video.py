"""torchvision's video ResNets (Tran et al. 2018): R3D-18, MC3-18 and R(2+1)D-18.

They are always constructed with ``weights=None`` (nothing is ever downloaded); pretrained weights,
e.g. torchvision's Kinetics-400 checkpoints fetched by the user beforehand, are read from a local file
with :func:`vidattack.models.checkpoint.load_state_dict_file` (safetensors, or a ``torch.save`` state
dict loaded with ``weights_only=True``). Inputs are ``[N, C, T, H, W]`` normalised with the Kinetics
statistics; the reference recipe uses 16x112x112 clips.
"""

from __future__ import annotations

from torch import nn

__all__ = ["TORCHVISION_VIDEO_ARCHS", "build_torchvision_video"]

TORCHVISION_VIDEO_ARCHS = ("r3d_18", "mc3_18", "r2plus1d_18")


def build_torchvision_video(arch: str, num_classes: int = 400, weights_path: str | None = None) -> nn.Module:
    """Build torchvision's ``arch`` (one of :data:`TORCHVISION_VIDEO_ARCHS`) with ``weights=None``.

    Args:
        arch: ``"r3d_18"``, ``"mc3_18"`` or ``"r2plus1d_18"``.
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
        from vidattack.models.checkpoint import load_state_dict_file, load_state_dict_into

        load_state_dict_into(net, load_state_dict_file(weights_path), source=weights_path)
    return net
