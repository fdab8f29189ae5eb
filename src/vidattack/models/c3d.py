"""C3D (Tran et al., *Learning Spatiotemporal Features with 3D Convolutional Networks*, ICCV 2015).

Eight 3x3x3 convolutions in five blocks (64 / 128 / 256x2 / 512x2 / 512x2 channels), max pooling
1x2x2 after the first block (so early temporal information is kept) and 2x2x2 after the others,
then fc6 and fc7 (4096 units at full size) with dropout, and the classifier fc8.

Differences from the paper, all switched off or neutral at the defaults where they matter:

* ``width`` scales every convolution's channel count and ``fc_dim`` sets fc6/fc7, so the tiny
  test-bed model is the same code as the full one.
* The pooling layers use ``ceil_mode`` and an adaptive max pool before fc6 (to ``fc_pool``, by
  default the paper's 1x4x4 for a 16x112x112 clip), so short or small clips such as 16x32x32 never
  collapse to an empty tensor.
* ``batch_norm=True`` adds BatchNorm after each convolution (off by default, as in the paper); it makes
  the small models train in a few CPU minutes.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["C3D", "C3D_CHANNELS"]

# Output channels of conv1a, conv2a, conv3a, conv3b, conv4a, conv4b, conv5a, conv5b
# (Tran et al. 2015, Fig. 3).
C3D_CHANNELS = (64, 128, 256, 256, 512, 512, 512, 512)
# Index of the convolution after which each of pool1..pool5 comes.
_POOL_AFTER = {0: (1, 2, 2), 1: (2, 2, 2), 3: (2, 2, 2), 5: (2, 2, 2), 7: (2, 2, 2)}


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


class C3D(nn.Module):
    """C3D network on ``[N, C, T, H, W]`` normalised clips -> logits ``[N, num_classes]``.

    Args:
        num_classes: number of output classes (101 for UCF-101, 487 for Sports-1M in the paper).
        width: multiplier of every convolution's channel count (1.0 = the paper).
        fc_dim: units of fc6 and fc7 (4096 in the paper).
        dropout: dropout probability before fc7 and fc8 (0.5 in the paper).
        fc_pool: ``(T, H, W)`` output of the adaptive max pool in front of fc6; ``(1, 4, 4)`` matches
            the paper's 8192-d pool5 output for 16x112x112 clips.
        batch_norm: BatchNorm after each convolution (not in the paper).
        in_channels: input channels (3 for RGB).
    """

    def __init__(
        self,
        num_classes: int = 101,
        *,
        width: float = 1.0,
        fc_dim: int = 4096,
        dropout: float = 0.5,
        fc_pool: Sequence[int] = (1, 4, 4),
        batch_norm: bool = False,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if width <= 0 or fc_dim <= 0 or num_classes <= 0:
            raise ValueError(
                f"width, fc_dim and num_classes must be positive, got {width}, {fc_dim}, {num_classes}"
            )
        layers: list[nn.Module] = []
        previous = in_channels
        for index, channels in enumerate(C3D_CHANNELS):
            out = _scaled(channels, width)
            layers.append(nn.Conv3d(previous, out, kernel_size=3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm3d(out))
            layers.append(nn.ReLU(inplace=True))
            if index in _POOL_AFTER:
                size = _POOL_AFTER[index]
                layers.append(nn.MaxPool3d(kernel_size=size, stride=size, ceil_mode=True))
            previous = out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveMaxPool3d(tuple(fc_pool))
        flat = previous * int(fc_pool[0]) * int(fc_pool[1]) * int(fc_pool[2])
        self.classifier = nn.Sequential(
            nn.Linear(flat, fc_dim),  # fc6
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_dim, fc_dim),  # fc7
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(fc_dim, num_classes),  # fc8
        )

    def forward(self, x: Tensor) -> Tensor:
        """``x [N, C, T, H, W]`` (normalised) -> logits ``[N, num_classes]``."""
        return self.classifier(self.pool(self.features(x)).flatten(1))
