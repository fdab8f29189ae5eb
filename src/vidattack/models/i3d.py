"""I3D (Carreira & Zisserman, *Quo Vadis, Action Recognition?*, CVPR 2017), RGB stream.

Inception-v1 (GoogLeNet with batch normalisation) inflated to 3D: a 7x7x7 stride-2 stem convolution,
max pools of 1x3x3 (no temporal pooling early on), 1x1x1 and 3x3x3 convolutions, the nine Inception
modules Mixed_3b .. Mixed_5c with the v1 channel counts, average pooling, dropout and a 1x1x1
convolution producing the logits, which are averaged over time.

Deviations that keep the code usable from 16x32x32 to 64x224x224:

* every convolution and max pool uses TensorFlow-style ``"SAME"`` padding (as the original
  implementation), computed from the actual input size, so the output of a stride-s layer is
  ``ceil(size / s)`` and never collapses to zero;
* the final average pool is global (adaptive) instead of a fixed 2x7x7 window; because the logits
  layer is linear, averaging logits over time after a fixed window and averaging features before
  it give the same video logit up to border effects;
* ``width`` multiplies every channel count (1.0 = the paper) so the tiny model is the same code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["I3D", "INCEPTION_V1_MIXED"]

# (name, (b0 1x1, b1 1x1 reduce, b1 3x3, b2 1x1 reduce, b2 3x3, b3 pool-proj)) of Inception-v1
# (Szegedy et al. 2015, Table 1); I3D uses 3x3x3 where GoogLeNet had 5x5 in branch 2.
INCEPTION_V1_MIXED: tuple[tuple[str, tuple[int, int, int, int, int, int]], ...] = (
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
)


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow ``SAME`` padding (before, after) for one axis: output size ``ceil(size / stride)``."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_same(
    x: Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int], value: float = 0.0
) -> Tensor:
    pads: list[int] = []
    # F.pad takes the last axis first.
    for axis, k, s in zip((4, 3, 2), kernel[::-1], stride[::-1], strict=True):
        pads.extend(_same_padding(x.shape[axis], k, s))
    if not any(pads):
        return x
    return F.pad(x, pads, value=value)


def _triple(value: int | tuple[int, int, int]) -> tuple[int, int, int]:
    return (value, value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


class Unit3D(nn.Module):
    """Conv3d with ``SAME`` padding, then BatchNorm and ReLU (both optional, as in the logits layer)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | tuple[int, int, int] = 1,
        stride: int | tuple[int, int, int] = 1,
        *,
        batch_norm: bool = True,
        activation: bool = True,
        bias: bool = False,
    ) -> None:
        super().__init__()
        self.kernel, self.stride = _triple(kernel), _triple(stride)
        self.conv = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if batch_norm else None
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(_pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True) if self.activation else x


class MaxPool3dSame(nn.Module):
    """Max pool with ``SAME`` padding; padding with -inf so padded cells never win."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel, self.stride, value=-math.inf), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four parallel branches concatenated along channels (1x1; 1x1->3x3; 1x1->3x3; pool->1x1)."""

    def __init__(self, in_channels: int, channels: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3 = channels
        self.b0 = Unit3D(in_channels, b0, 1)
        self.b1a, self.b1b = Unit3D(in_channels, b1a, 1), Unit3D(b1a, b1b, 3)
        self.b2a, self.b2b = Unit3D(in_channels, b2a, 1), Unit3D(b2a, b2b, 3)
        self.b3a, self.b3b = MaxPool3dSame((3, 3, 3), (1, 1, 1)), Unit3D(in_channels, b3, 1)
        self.out_channels = b0 + b1b + b2b + b3

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1
        )


class I3D(nn.Module):
    """I3D (RGB) on ``[N, C, T, H, W]`` normalised clips -> logits ``[N, num_classes]``.

    Args:
        num_classes: number of output classes (400 for Kinetics).
        width: multiplier of every channel count (1.0 = the paper; at least 1 channel per branch).
        dropout: dropout probability before the logits layer (0.5 in the reference implementation).
        in_channels: input channels (3 for RGB).
    """

    def __init__(
        self, num_classes: int = 400, *, width: float = 1.0, dropout: float = 0.5, in_channels: int = 3
    ) -> None:
        super().__init__()
        if width <= 0 or num_classes <= 0:
            raise ValueError(f"width and num_classes must be positive, got {width} and {num_classes}")

        def scaled(channels: int) -> int:
            return max(1, int(round(channels * width)))

        stem1, stem2, stem3 = scaled(64), scaled(64), scaled(192)
        layers: list[tuple[str, nn.Module]] = [
            ("Conv3d_1a_7x7", Unit3D(in_channels, stem1, 7, 2)),
            ("MaxPool3d_2a_3x3", MaxPool3dSame((1, 3, 3), (1, 2, 2))),
            ("Conv3d_2b_1x1", Unit3D(stem1, stem2, 1)),
            ("Conv3d_2c_3x3", Unit3D(stem2, stem3, 3)),
            ("MaxPool3d_3a_3x3", MaxPool3dSame((1, 3, 3), (1, 2, 2))),
        ]
        previous = stem3
        for name, channels in INCEPTION_V1_MIXED:
            if name == "Mixed_4b":
                layers.append(("MaxPool3d_4a_3x3", MaxPool3dSame((3, 3, 3), (2, 2, 2))))
            elif name == "Mixed_5b":
                layers.append(("MaxPool3d_5a_2x2", MaxPool3dSame((2, 2, 2), (2, 2, 2))))
            module = InceptionModule(previous, tuple(scaled(c) for c in channels))  # type: ignore[arg-type]
            layers.append((name, module))
            previous = module.out_channels
        self.features = nn.Sequential()
        for name, module in layers:
            self.features.add_module(name, module)
        self.dropout = nn.Dropout(dropout)
        self.logits = Unit3D(previous, num_classes, 1, batch_norm=False, activation=False, bias=True)
        self.feature_dim = previous

    def forward(self, x: Tensor) -> Tensor:
        """``x [N, C, T, H, W]`` (normalised) -> logits ``[N, num_classes]``."""
        pooled = F.adaptive_avg_pool3d(self.features(x), 1)
        return self.logits(self.dropout(pooled)).flatten(1)
