"""Architecture names -> builders of wrapped models.

``build(arch, **kwargs)`` returns a :class:`~vidattack.models.wrapper.VideoClassifier` (video archs) or
an :class:`~vidattack.models.image.ImageBackbone` (image archs) that records ``arch`` and the keyword
arguments that rebuild it, which is what a checkpoint's JSON stores.

=============== ===================================================================== ========
arch            network                                                               input
=============== ===================================================================== ========
c3d             :class:`~vidattack.models.c3d.C3D` (Tran et al. 2015)                  ncthw
i3d             :class:`~vidattack.models.i3d.I3D` (Carreira & Zisserman 2017)         ncthw
lrcn / cnn_rnn  :class:`~vidattack.models.cnn_rnn.CNNRNN` (Donahue et al.; LSTM head)  ntchw
r2plus1d        :class:`~vidattack.models.r2plus1d.R2Plus1D` (width-configurable)      ncthw
r3d_18, mc3_18, torchvision.models.video (``weights=None``; ``weights_path`` to load)  ncthw
r2plus1d_18,
s3d, mvit_v2_s,
swin3d_t
image_small     :class:`~vidattack.models.image.SmallImageCNN`                         nchw
resnet18, resnet50, densenet121, densenet169, inception_v3: torchvision (``weights=None``)
=============== ===================================================================== ========
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from vidattack.models.c3d import C3D
from vidattack.models.cnn_rnn import CNNRNN
from vidattack.models.i3d import I3D
from vidattack.models.image import (
    TORCHVISION_IMAGE_ARCHS,
    ImageBackbone,
    SmallImageCNN,
    build_torchvision_image,
)
from vidattack.models.r2plus1d import R2Plus1D
from vidattack.models.torchvision_video import TORCHVISION_VIDEO_ARCHS, build_torchvision_video
from vidattack.models.wrapper import IMAGENET_MEAN, IMAGENET_STD, KINETICS_MEAN, KINETICS_STD, VideoClassifier

__all__ = ["build", "ARCHS", "VIDEO_ARCHS", "IMAGE_ARCHS", "is_image_arch"]

# Keyword arguments that name a file rather than describe the architecture: they are used at build
# time but never recorded, because a checkpoint carries all weights itself.
_FILE_KWARGS = ("weights_path", "backbone_weights")

# arch -> (network builder, input layout or "image", default num_classes, default mean, default std)
_Spec = tuple[Callable[..., nn.Module], str, int, Sequence[float], Sequence[float]]


def _lrcn(num_classes: int = 101, **kwargs: Any) -> nn.Module:
    kwargs.setdefault("head", "lstm")
    return CNNRNN(num_classes, **kwargs)


def _cnn_rnn_stats(kwargs: dict[str, Any]) -> tuple[Sequence[float], Sequence[float]]:
    # torchvision image backbones were trained on ImageNet statistics.
    if kwargs.get("backbone", "small") != "small":
        return IMAGENET_MEAN, IMAGENET_STD
    return KINETICS_MEAN, KINETICS_STD


_SPECS: dict[str, _Spec] = {
    "c3d": (C3D, "ncthw", 101, KINETICS_MEAN, KINETICS_STD),
    "i3d": (I3D, "ncthw", 400, KINETICS_MEAN, KINETICS_STD),
    "lrcn": (_lrcn, "ntchw", 101, KINETICS_MEAN, KINETICS_STD),
    "cnn_rnn": (_lrcn, "ntchw", 101, KINETICS_MEAN, KINETICS_STD),
    "r2plus1d": (R2Plus1D, "ncthw", 400, KINETICS_MEAN, KINETICS_STD),
    "image_small": (SmallImageCNN, "image", 10, IMAGENET_MEAN, IMAGENET_STD),
}
for _name in TORCHVISION_VIDEO_ARCHS:
    _SPECS[_name] = (
        lambda num_classes=400, _arch=_name, **kw: build_torchvision_video(_arch, num_classes, **kw),
        "ncthw",
        400,
        KINETICS_MEAN,
        KINETICS_STD,
    )
for _name in TORCHVISION_IMAGE_ARCHS:
    _SPECS[_name] = (
        lambda num_classes=1000, _arch=_name, **kw: build_torchvision_image(_arch, num_classes, **kw),
        "image",
        1000,
        IMAGENET_MEAN,
        IMAGENET_STD,
    )

ARCHS: tuple[str, ...] = tuple(_SPECS)
IMAGE_ARCHS: tuple[str, ...] = tuple(name for name, spec in _SPECS.items() if spec[1] == "image")
VIDEO_ARCHS: tuple[str, ...] = tuple(name for name in ARCHS if name not in IMAGE_ARCHS)


def is_image_arch(arch: str) -> bool:
    """Whether ``arch`` builds an :class:`ImageBackbone` (else a :class:`VideoClassifier`)."""
    return arch in IMAGE_ARCHS


def build(
    arch: str,
    *,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    num_frames: int | None = None,
    input_size: int | tuple[int, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    resize_to: int | Sequence[int] | None = None,
    seed: int | None = None,
    **arch_kwargs: Any,
) -> VideoClassifier | ImageBackbone:
    """Build the wrapped model ``arch`` (see the module table) with random (or file) weights.

    Args:
        arch: a name in :data:`ARCHS`.
        num_classes: output classes; defaults to ``len(class_names)`` or the arch's usual count.
        class_names: one name per class (kept as metadata; also sets ``num_classes``).
        num_frames, input_size: clip length and ``(H, W)`` (or one side, square) the model is meant for
            (metadata).
        mean, std: override the normalisation (default: Kinetics statistics for video archs, ImageNet
            for image archs and torchvision frame backbones).
        resize_to: image archs only: resize inputs to this size first (see :class:`ImageBackbone`).
        seed: initialise the weights from this seed without touching the global RNG state.
        **arch_kwargs: passed to the network (``width``, ``fc_dim``, ``head``, ``weights_path``, ...).

    Returns:
        A ``VideoClassifier`` (``[N,T,C,H,W] -> [N,K]``) or an ``ImageBackbone`` (``[B,C,H,W] -> [B,K]``),
        in training mode as a fresh ``nn.Module`` is.

    Raises:
        ValueError: unknown ``arch``, a keyword the architecture does not take, or inconsistent
            ``num_classes`` / ``class_names``.
    """
    if arch not in _SPECS:
        raise ValueError(f"unknown arch {arch!r}; available: {', '.join(ARCHS)}")
    builder, layout, default_classes, default_mean, default_std = _SPECS[arch]
    if class_names is not None:
        class_names = [str(name) for name in class_names]
        if num_classes is not None and num_classes != len(class_names):
            raise ValueError(f"num_classes={num_classes} disagrees with {len(class_names)} class_names")
        num_classes = len(class_names)
    num_classes = default_classes if num_classes is None else int(num_classes)
    if isinstance(input_size, int):  # --arch-param input_size=112
        input_size = (input_size, input_size)
    _check_kwargs(arch, builder, arch_kwargs)
    if arch in ("lrcn", "cnn_rnn") and mean is None and std is None:
        default_mean, default_std = _cnn_rnn_stats(arch_kwargs)

    recorded = {"num_classes": num_classes, **{k: v for k, v in arch_kwargs.items() if k not in _FILE_KWARGS}}
    if resize_to is not None:
        recorded["resize_to"] = resize_to
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        net = builder(num_classes=num_classes, **arch_kwargs)
    mean = default_mean if mean is None else mean
    std = default_std if std is None else std
    if layout == "image":
        return ImageBackbone(
            net, mean=mean, std=std, resize_to=resize_to, arch=arch, arch_kwargs=recorded,
            class_names=class_names, input_size=input_size,
        )  # fmt: skip
    if resize_to is not None:
        raise ValueError(f"resize_to applies to image archs only, not {arch!r}")
    return VideoClassifier(
        net, input_layout=layout, mean=mean, std=std, arch=arch, arch_kwargs=recorded,
        class_names=class_names, num_frames=num_frames, input_size=input_size,
    )  # fmt: skip


def _check_kwargs(arch: str, builder: Callable[..., nn.Module], kwargs: dict[str, Any]) -> None:
    """Reject unknown keywords with the list of accepted ones (instead of a bare TypeError)."""
    if arch in TORCHVISION_VIDEO_ARCHS:
        accepted = {"weights_path"}
    elif arch in TORCHVISION_IMAGE_ARCHS:
        accepted = {"weights_path"} | ({"transform_input"} if arch == "inception_v3" else set())
    else:
        target = CNNRNN if arch in ("lrcn", "cnn_rnn") else builder
        accepted = {
            name
            for name, param in inspect.signature(target).parameters.items()
            if param.kind is inspect.Parameter.KEYWORD_ONLY
        }
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ValueError(f"arch {arch!r} does not take {unknown}; accepted keywords: {sorted(accepted)}")
