"""The one wrapper between vidattack's video layout and a network's own conventions.

Attacks, oracles and metrics see videos as ``Tensor[N, T, C, H, W]`` float in [0, 1]
(:mod:`vidattack.video`). Networks want other things: C3D, I3D and the torchvision video ResNets take
``[N, C, T, H, W]``; all of them expect mean/std-normalised inputs. :class:`VideoClassifier` does the
normalisation and the permutation, once, so that no attack ever has to know about them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "VideoClassifier",
    "to_channels_last",
    "KINETICS_MEAN",
    "KINETICS_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LAYOUTS",
]

# Normalisation statistics of the torchvision reference recipes (Kinetics-400 video models,
# ImageNet image models). Models trained from scratch here use them too, so that a checkpoint
# trained elsewhere with the usual recipe drops in without a different wrapper.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

LAYOUTS = ("ntchw", "ncthw")


def _stat_buffer(values: Sequence[float], name: str) -> Tensor:
    tensor = torch.as_tensor(list(values), dtype=torch.float32).reshape(-1)
    if tensor.numel() == 0 or not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} must be a non-empty sequence of finite floats, got {list(values)!r}")
    return tensor


def to_channels_last(module: nn.Module) -> nn.Module:
    """Store every 4-D / 5-D parameter channels-last, in place; returns ``module``.

    oneDNN's CPU convolutions run 1.5-2x faster (forward and backward) on channels-last weights for the
    zoo models, which matters when black-box attacks make tens of thousands of queries. Values,
    state-dict keys and saved files are unchanged.
    """
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    with torch.no_grad():
        for parameter in module.parameters():
            memory_format = formats.get(parameter.dim())
            if memory_format is not None:
                parameter.data = parameter.data.contiguous(memory_format=memory_format)
    return module


class VideoClassifier(nn.Module):
    """A video network behind vidattack's layout: ``[N, T, C, H, W]`` in [0, 1] -> logits ``[N, K]``.

    Args:
        net: the network. It receives normalised inputs in ``input_layout`` and returns ``[N, K]``
            logits (and, optionally, has ``frame_logits(x) -> [N, T, K]``).
        input_layout: ``"ntchw"`` (per-frame networks such as CNN+RNN) or ``"ncthw"`` (3D CNNs).
        mean, std: per-channel normalisation applied as ``(x - mean) / std`` (stored as buffers, so
            they move with ``.to(device)`` and are saved with the weights).
        arch: registry name of the architecture (see :mod:`vidattack.models.registry`).
        arch_kwargs: the keyword arguments that rebuild ``net`` with ``registry.build(arch, **kw)``.
        class_names: one name per output class (defaults to ``"0" .. "K-1"`` when unknown).
        num_frames, input_size: the clip length ``T`` and frame size ``(H, W)`` the network was
            trained on; informative (the networks here accept other sizes).

    The wrapper checks the input's rank and channel count cheaply on every call but not its value
    range: attacks and gradient estimators may legitimately probe slightly outside [0, 1], and the
    threat-model oracles validate videos at their own boundary.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        input_layout: str = "ncthw",
        mean: Sequence[float] = KINETICS_MEAN,
        std: Sequence[float] = KINETICS_STD,
        arch: str = "custom",
        arch_kwargs: dict[str, Any] | None = None,
        class_names: Sequence[str] | None = None,
        num_frames: int | None = None,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if input_layout not in LAYOUTS:
            raise ValueError(f"input_layout must be one of {LAYOUTS}, got {input_layout!r}")
        mean_t, std_t = _stat_buffer(mean, "mean"), _stat_buffer(std, "std")
        if mean_t.numel() != std_t.numel():
            raise ValueError(
                f"mean and std must have the same length, got {mean_t.numel()} and {std_t.numel()}"
            )
        if bool((std_t <= 0).any()):
            raise ValueError(f"std must be positive, got {std_t.tolist()}")
        self.net = to_channels_last(net)
        self.input_layout = input_layout
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)
        self.arch = arch
        self.arch_kwargs: dict[str, Any] = dict(arch_kwargs or {})
        self.class_names: list[str] | None = list(class_names) if class_names is not None else None
        self.num_frames = num_frames
        self.input_size = tuple(input_size) if input_size is not None else None
        # The JSON document of the checkpoint this model was loaded from (set by checkpoint.load).
        self.checkpoint_metadata: dict[str, Any] | None = None

    # ------------------------------------------------------------------ properties
    @property
    def num_classes(self) -> int:
        """Number of output classes ``K`` (from the class names or the architecture kwargs)."""
        if self.class_names is not None:
            return len(self.class_names)
        if "num_classes" in self.arch_kwargs:
            return int(self.arch_kwargs["num_classes"])
        raise AttributeError("num_classes is unknown: give class_names or arch_kwargs['num_classes']")

    @property
    def input_spec(self) -> dict[str, Any]:
        """What the model takes, checked by the threat models before it runs: ``frames`` (``None`` for
        recurrent models, which take any length), ``channels``, ``height``, ``width``, ``dtype``."""
        height, width = self.input_size if self.input_size is not None else (None, None)
        frames = None if self.has_frame_logits else self.num_frames
        dtype = next(iter(self.parameters()), torch.empty(0)).dtype
        return {"frames": frames, "channels": len(self.mean), "height": height, "width": width, "dtype": dtype}

    @property
    def has_frame_logits(self) -> bool:
        """Whether :meth:`frame_logits` is available (per-frame networks such as CNN+RNN)."""
        return callable(getattr(self.net, "frame_logits", None))

    def metadata(self) -> dict[str, Any]:
        """What a checkpoint needs to rebuild this wrapper (JSON-serialisable)."""
        return {
            "kind": "video",
            "arch": self.arch,
            "arch_kwargs": dict(self.arch_kwargs),
            "class_names": self.class_names,
            "input": {
                "layout": "ntchw",
                "net_layout": self.input_layout,
                "frames": self.num_frames,
                "height": self.input_size[0] if self.input_size else None,
                "width": self.input_size[1] if self.input_size else None,
                "range": [0.0, 1.0],
            },
            "normalisation": {"mean": self.mean.tolist(), "std": self.std.tolist()},
        }

    # ------------------------------------------------------------------ forward
    def prepare(self, videos: Tensor) -> Tensor:
        """Normalise ``videos [N, T, C, H, W]`` in [0, 1] and permute them to the network's layout."""
        if not isinstance(videos, Tensor) or videos.dim() != 5:
            shape = tuple(videos.shape) if isinstance(videos, Tensor) else type(videos).__name__
            raise ValueError(f"videos must have shape [N, T, C, H, W], got {shape}")
        channels = self.mean.numel()
        if videos.shape[2] != channels:
            raise ValueError(
                f"videos must have {channels} channels at axis 2 of [N, T, C, H, W], got shape "
                f"{tuple(videos.shape)} (a [N, C, T, H, W] tensor needs vidattack.video.ncthw_to_ntchw)"
            )
        mean = self.mean.to(videos.dtype).view(1, 1, channels, 1, 1)
        std = self.std.to(videos.dtype).view(1, 1, channels, 1, 1)
        x = (videos - mean) / std
        if self.input_layout == "ncthw":
            x = x.permute(0, 2, 1, 3, 4)
        return x

    def forward(self, videos: Tensor) -> Tensor:
        """Logits ``[N, K]`` of ``videos [N, T, C, H, W]`` (float, values in [0, 1])."""
        return self.net(self.prepare(videos))

    def frame_logits(self, videos: Tensor) -> Tensor:
        """Per-frame logits ``[N, T, K]`` (CNN+RNN models; Wei et al. 2019 plot frame-level labels).

        Raises:
            ValueError: the wrapped network has no per-frame logits (3D CNNs pool time away).
        """
        method = getattr(self.net, "frame_logits", None)
        if not callable(method):
            raise ValueError(f"model {self.arch!r} ({type(self.net).__name__}) has no per-frame logits")
        return method(self.prepare(videos))

    def extra_repr(self) -> str:
        return (
            f"arch={self.arch!r}, input_layout={self.input_layout!r}, classes={len(self.class_names or [])}"
        )
