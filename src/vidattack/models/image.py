"""Image backbones used as attack priors (V-BAD's tentative perturbations, SVA's agent features).

:class:`ImageBackbone` gives every image network one interface, with normalisation inside:

* ``forward(images [B, C, H, W] in [0, 1]) -> logits [B, K]``;
* ``features(images, layer=None) -> Tensor`` -- a named intermediate feature map (default: the last
  convolutional block), the representation V-BAD (Jiang et al. 2019, Sec. 3.2) perturbs frames against;
* ``embed(images) -> [B, D]`` -- globally average-pooled last-block features (SVA's per-frame
  features, Wei et al. 2022, Sec. 3.2).

Networks: torchvision ResNet-18/50, DenseNet-121/169 and Inception-v3, always built with
``weights=None`` and loaded from a local file when weights are wanted (nothing is downloaded), and
:class:`SmallImageCNN`, a tiny CNN trained on the synthetic test bed's frames.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vidattack.models.wrapper import IMAGENET_MEAN, IMAGENET_STD, _stat_buffer, to_channels_last

__all__ = ["ImageBackbone", "SmallImageCNN", "TORCHVISION_IMAGE_ARCHS", "build_torchvision_image"]

TORCHVISION_IMAGE_ARCHS = ("resnet18", "resnet50", "densenet121", "densenet169", "inception_v3")

Stage = tuple[str, Callable[[Tensor], Tensor]]


class SmallImageCNN(nn.Module):
    """A tiny image CNN: conv-BN-ReLU blocks (max pooling between them), global pooling, linear.

    Args:
        num_classes: number of output classes.
        channels: output channels of each block (``len(channels)`` blocks, named ``block1`` ..).
        kernel_size: odd kernel size of every convolution.
        dropout: dropout before the classifier.
        in_channels: input channels.
    """

    def __init__(
        self,
        num_classes: int = 10,
        *,
        channels: Sequence[int] = (16, 32, 64),
        kernel_size: int = 3,
        dropout: float = 0.0,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if not channels or kernel_size % 2 != 1:
            raise ValueError(
                f"channels must be non-empty and kernel_size odd, got {channels!r}, {kernel_size}"
            )
        self.blocks = nn.ModuleDict()
        previous = in_channels
        for index, out in enumerate(channels):
            layers: list[nn.Module] = []
            if index > 0:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            layers += [
                nn.Conv2d(previous, int(out), kernel_size, padding=kernel_size // 2, bias=False),
                nn.BatchNorm2d(int(out)),
                nn.ReLU(inplace=True),
            ]
            self.blocks[f"block{index + 1}"] = nn.Sequential(*layers)
            previous = int(out)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(previous, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks.values():
            x = block(x)
        return self.fc(self.dropout(x.mean(dim=(2, 3))))


def build_torchvision_image(
    arch: str, num_classes: int = 1000, weights_path: str | None = None, transform_input: bool = False
) -> nn.Module:
    """torchvision ``arch`` (one of :data:`TORCHVISION_IMAGE_ARCHS`) with ``weights=None``.

    Args:
        arch: ``resnet18``, ``resnet50``, ``densenet121``, ``densenet169`` or ``inception_v3``.
        num_classes: classifier size (1000 for ImageNet checkpoints).
        weights_path: optional local weights file (torchvision key names; Inception's auxiliary
            classifier, not built here, is ignored).
        transform_input: Inception-v3 only; torchvision's ImageNet Inception weights expect ``True``.
    """
    import torchvision

    if arch not in TORCHVISION_IMAGE_ARCHS:
        raise ValueError(f"arch must be one of {TORCHVISION_IMAGE_ARCHS}, got {arch!r}")
    if arch == "inception_v3":
        net = torchvision.models.inception_v3(
            weights=None,
            num_classes=num_classes,
            aux_logits=False,
            init_weights=True,
            transform_input=transform_input,
        )
    else:
        net = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
    if weights_path is not None:
        from vidattack.models.weights import load_state_dict_file, load_state_dict_into

        state = load_state_dict_file(weights_path)
        if arch == "inception_v3":
            state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
        load_state_dict_into(net, state, source=weights_path)
    return net


def _family(net: nn.Module) -> str:
    import torchvision

    if isinstance(net, SmallImageCNN):
        return "small"
    if isinstance(net, torchvision.models.ResNet):
        return "resnet"
    if isinstance(net, torchvision.models.DenseNet):
        return "densenet"
    if isinstance(net, torchvision.models.Inception3):
        return "inception"
    raise ValueError(
        f"net must be a SmallImageCNN or a torchvision ResNet/DenseNet/Inception3, got {type(net).__name__}"
    )


def _stages_and_head(net: nn.Module, family: str) -> tuple[list[Stage], Callable[[Tensor], Tensor]]:
    """The network cut into named stages (in order) and the head that maps the last one to logits.

    The stages reuse the network's own modules, so the state dict stays the torchvision one.
    """
    if family == "small":
        stages: list[Stage] = list(net.blocks.items())
        return stages, lambda x: net.fc(net.dropout(x.mean(dim=(2, 3))))
    if family == "resnet":
        stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        stages = [("stem", stem)] + [(f"layer{i}", getattr(net, f"layer{i}")) for i in range(1, 5)]
        return stages, lambda x: net.fc(torch.flatten(net.avgpool(x), 1))
    if family == "densenet":
        children = list(net.features.named_children())
        stem = nn.Sequential(*[m for name, m in children if name in ("conv0", "norm0", "relu0", "pool0")])
        stages = [("stem", stem)]
        stages += [(name, m) for name, m in children if name.startswith(("denseblock", "transition"))]
        # torchvision applies ReLU after norm5 in forward(); "features" is that final map.
        stages.append(("features", lambda x: F.relu(net.features.norm5(x))))
        return stages, lambda x: net.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))
    # Inception-v3, in the order of torchvision's Inception3._forward (auxiliary head omitted).
    names = [
        "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
        "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
        "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c",
    ]  # fmt: skip
    stages = [("transform_input", net._transform_input)] + [(name, getattr(net, name)) for name in names]
    return stages, lambda x: net.fc(torch.flatten(net.dropout(net.avgpool(x)), 1))


_DEFAULT_LAYER = {"small": None, "resnet": "layer4", "densenet": "features", "inception": "Mixed_7c"}


class ImageBackbone(nn.Module):
    """An image classifier behind vidattack's conventions: ``[B, C, H, W]`` in [0, 1] -> logits.

    Args:
        net: a :class:`SmallImageCNN` or a torchvision ResNet / DenseNet / Inception3.
        mean, std: per-channel normalisation ``(x - mean) / std`` (ImageNet statistics by default).
        resize_to: optional ``(H, W)`` (or side) that inputs are bilinearly resized to before the
            network, e.g. 299 for Inception-v3 on small frames (it needs at least 75x75).
        arch, arch_kwargs: registry name and keyword arguments that rebuild this model.
        class_names: one name per output class.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        resize_to: int | Sequence[int] | None = None,
        arch: str = "custom",
        arch_kwargs: dict[str, Any] | None = None,
        class_names: Sequence[str] | None = None,
        input_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.net = to_channels_last(net)
        self.family = _family(net)
        mean_t, std_t = _stat_buffer(mean, "mean"), _stat_buffer(std, "std")
        if mean_t.numel() != std_t.numel() or bool((std_t <= 0).any()):
            raise ValueError(
                f"mean and std must have equal length and std > 0, got {mean_t.tolist()}, {std_t.tolist()}"
            )
        self.register_buffer("mean", mean_t)
        self.register_buffer("std", std_t)
        if isinstance(resize_to, int):
            resize_to = (resize_to, resize_to)
        self.resize_to = tuple(int(s) for s in resize_to) if resize_to is not None else None
        self.arch = arch
        self.arch_kwargs: dict[str, Any] = dict(arch_kwargs or {})
        self.class_names: list[str] | None = list(class_names) if class_names is not None else None
        self.input_size = tuple(input_size) if input_size is not None else None
        # The JSON document of the checkpoint this model was loaded from (set by checkpoint.load).
        self.checkpoint_metadata: dict[str, Any] | None = None
        # The stages are re-derived from ``net`` on every call (cheap) rather than stored: stored
        # closures would survive copy.deepcopy pointing at the original network, and do not pickle.
        stages, _ = _stages_and_head(net, self.family)
        self.feature_layers: tuple[str, ...] = tuple(name for name, _ in stages if name != "transform_input")
        self.default_layer: str = _DEFAULT_LAYER[self.family] or self.feature_layers[-1]

    @property
    def num_classes(self) -> int:
        """Number of output classes ``K``."""
        if self.class_names is not None:
            return len(self.class_names)
        return int(self.arch_kwargs.get("num_classes", 1000))

    def metadata(self) -> dict[str, Any]:
        """What a checkpoint needs to rebuild this backbone (JSON-serialisable)."""
        return {
            "kind": "image",
            "arch": self.arch,
            "arch_kwargs": dict(self.arch_kwargs),
            "class_names": self.class_names,
            "input": {
                "layout": "nchw",
                "frames": None,
                "height": self.input_size[0] if self.input_size else None,
                "width": self.input_size[1] if self.input_size else None,
                "range": [0.0, 1.0],
            },
            "normalisation": {"mean": self.mean.tolist(), "std": self.std.tolist()},
        }

    def prepare(self, images: Tensor) -> Tensor:
        """Check ``images [B, C, H, W]``, resize (if set) and normalise them."""
        if not isinstance(images, Tensor) or images.dim() != 4:
            shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(
                f"images must have shape [B, C, H, W], got {shape} (frames of a video: video.flatten(0, 1))"
            )
        channels = self.mean.numel()
        if images.shape[1] != channels:
            raise ValueError(
                f"images must have {channels} channels at axis 1, got shape {tuple(images.shape)}"
            )
        if self.resize_to is not None and tuple(images.shape[-2:]) != self.resize_to:
            images = F.interpolate(images, size=self.resize_to, mode="bilinear", align_corners=False)
        mean = self.mean.to(images.dtype).view(1, channels, 1, 1)
        std = self.std.to(images.dtype).view(1, channels, 1, 1)
        return (images - mean) / std

    def _run(self, images: Tensor, until: str | None) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
        """The output of stage ``until`` (None: the last stage) and the head that maps the last to logits."""
        x = self.prepare(images)
        stages, head = _stages_and_head(self.net, self.family)
        for name, stage in stages:
            x = stage(x)
            if name == until:
                break
        return x, head

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``[B, K]`` of ``images [B, C, H, W]`` (float, values in [0, 1])."""
        features, head = self._run(images, None)
        return head(features)

    def features(self, images: Tensor, layer: str | None = None) -> Tensor:
        """The feature map ``[B, C', H', W']`` after stage ``layer`` (default: the last conv block).

        Raises:
            ValueError: ``layer`` is not one of :attr:`feature_layers`.
        """
        layer = self.default_layer if layer is None else layer
        if layer not in self.feature_layers:
            raise ValueError(f"layer must be one of {list(self.feature_layers)}, got {layer!r}")
        return self._run(images, layer)[0]

    def embed(self, images: Tensor) -> Tensor:
        """Globally average-pooled last-block features ``[B, D]`` of ``images [B, C, H, W]`` in [0, 1]."""
        return self._run(images, None)[0].mean(dim=(2, 3))

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, family={self.family!r}, default_layer={self.default_layer!r}"
