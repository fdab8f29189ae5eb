"""Width-configurable R(2+1)D (Tran et al., *A Closer Look at Spatiotemporal Convolutions*, CVPR 2018).

Every 3x3x3 convolution of a 3D ResNet-18 is factorised into a 1x3x3 spatial convolution to
``M`` mid-planes, BatchNorm, ReLU, and a 3x1x1 temporal convolution, with ``M`` chosen so the pair has
about the parameters of the 3D convolution it replaces (Sec. 3.5):
``M = floor(t d^2 N_in N_out / (d^2 N_in + t N_out))`` with ``t = d = 3``.
Four stages of two BasicBlocks (64, 128, 256, 512 channels; stride 2 in time and space from stage 2),
global average pooling and a linear classifier.

At ``width=1`` the module names, shapes and computation equal torchvision's ``r2plus1d_18``, so its
state dict loads with ``load_state_dict`` unchanged (tested in ``tests/test_models.py``). ``width``
scales the channel counts (the stem's 45 mid-planes included) so a tiny model is the same code.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["R2Plus1D", "midplanes"]


def midplanes(in_planes: int, out_planes: int) -> int:
    """Mid-planes of a (2+1)D block with the parameters of a 3x3x3 conv (Tran et al. 2018, Sec. 3.5)."""
    return (in_planes * out_planes * 3 * 3 * 3) // (in_planes * 3 * 3 + 3 * out_planes)


class Conv2Plus1D(nn.Sequential):
    """1x3x3 spatial conv -> BN -> ReLU -> 3x1x1 temporal conv (stride applied in both)."""

    def __init__(self, in_planes: int, out_planes: int, mid: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv3d(in_planes, mid, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, out_planes, (3, 1, 1), stride=(stride, 1, 1), padding=(1, 0, 0), bias=False),
        )


class BasicBlock(nn.Module):
    """Two (2+1)D convolutions with a residual connection (projection when the shape changes)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        # As in torchvision, both convolutions of a block use the mid-planes of (in_planes, planes).
        mid = midplanes(in_planes, planes)
        self.conv1 = nn.Sequential(
            Conv2Plus1D(in_planes, planes, mid, stride), nn.BatchNorm3d(planes), nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(Conv2Plus1D(planes, planes, mid), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_planes, planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm3d(planes)
            )

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


class R2Plus1D(nn.Module):
    """R(2+1)D-18 family on ``[N, C, T, H, W]`` normalised clips -> logits ``[N, num_classes]``.

    Args:
        num_classes: number of output classes (400 for Kinetics).
        width: channel multiplier (1.0 = R(2+1)D-18: 64/128/256/512 channels, 45 stem mid-planes).
        layers: BasicBlocks per stage (``(2, 2, 2, 2)`` for the 18-layer network).
        dropout: dropout before the classifier (0, as torchvision; not a state-dict entry).
        in_channels: input channels.
    """

    def __init__(
        self,
        num_classes: int = 400,
        *,
        width: float = 1.0,
        layers: Sequence[int] = (2, 2, 2, 2),
        dropout: float = 0.0,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if width <= 0 or num_classes <= 0 or len(layers) != 4 or min(layers) < 1:
            raise ValueError(
                f"width and num_classes must be positive and layers four positive counts, got "
                f"{width}, {num_classes}, {tuple(layers)}"
            )

        def scaled(channels: int) -> int:
            return max(1, int(round(channels * width)))

        stem_mid, planes = scaled(45), [scaled(c) for c in (64, 128, 256, 512)]
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, stem_mid, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(stem_mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(stem_mid, planes[0], (3, 1, 1), stride=1, padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(planes[0]),
            nn.ReLU(inplace=True),
        )
        previous = planes[0]
        stages = []
        for index, (count, width_planes) in enumerate(zip(layers, planes, strict=True)):
            blocks = [BasicBlock(previous, width_planes, stride=1 if index == 0 else 2)]
            blocks += [BasicBlock(width_planes, width_planes) for _ in range(count - 1)]
            stages.append(nn.Sequential(*blocks))
            previous = width_planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(previous, num_classes)
        # The initialisation of torchvision's VideoResNet, so both start from the same distribution.
        for module in self.modules():
            if isinstance(module, nn.Conv3d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm3d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        """``x [N, C, T, H, W]`` (normalised) -> logits ``[N, num_classes]``."""
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(self.dropout(self.avgpool(x).flatten(1)))
