"""CNN+RNN video classifiers (LRCN, Donahue et al. 2015/2017; the threat model of Wei et al. 2019).

A 2D CNN encodes every frame on its own; a recurrent layer (vanilla RNN, LSTM or GRU) integrates the
frame features over time; a linear classifier maps hidden states to class logits. The "pool" head
replaces the recurrence by an average over time (CNN + average pooling, the order-blind baseline of
Wei et al. 2019, Table 3).

Video logit (a choice, documented here because attacks depend on it): for the recurrent heads the
video logit is the classifier applied to the **last time step's** hidden state (``readout="last"``),
so a perturbation on early frames must propagate through the recurrence to change the decision,
which is the propagation that the sparse-perturbation attack studies; ``readout="mean"`` averages the
per-frame logits instead (Fig. 2 of Wei et al. 2019 draws an average pooling after the RNN). The pool
head always averages over time. :meth:`CNNRNN.frame_logits` gives the classifier's output at every time
step, the "frame-level labels" plotted in Wei et al. 2019, Fig. 1 and 4.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["CNNRNN", "SmallFrameCNN", "HEADS", "BACKBONES"]

HEADS = ("rnn", "lstm", "gru", "pool")
BACKBONES = ("small", "resnet18", "inception_v3")


class SmallFrameCNN(nn.Module):
    """A small per-frame CNN: three conv-BN-ReLU stages, a coarse spatial grid, a linear projection.

    The grid (``grid x grid`` cells, flattened) instead of global average pooling keeps *where* things
    are in the frame; motion classes are about positions changing, and a globally pooled feature is
    nearly translation invariant.

    Args:
        width: channel multiplier; the stages have ``32, 64, 128`` channels times ``width``.
        feature_dim: size of the output feature.
        grid: side of the adaptive average-pooling grid.
        in_channels: input channels.
    """

    def __init__(
        self, width: float = 1.0, feature_dim: int = 128, grid: int = 4, in_channels: int = 3
    ) -> None:
        super().__init__()
        if width <= 0 or feature_dim <= 0 or grid <= 0:
            raise ValueError(
                f"width, feature_dim and grid must be positive, got {width}, {feature_dim}, {grid}"
            )
        c1, c2, c3 = (max(1, int(round(base * width))) for base in (32, 64, 128))
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(c2, c3, 3, padding=1, bias=False),
            nn.BatchNorm2d(c3),
            nn.ReLU(inplace=True),
        )
        self.grid = nn.AdaptiveAvgPool2d(grid)
        self.project = nn.Sequential(nn.Linear(c3 * grid * grid, feature_dim), nn.ReLU(inplace=True))
        self.feature_dim = feature_dim

    def forward(self, frames: Tensor) -> Tensor:
        """``frames [B, C, H, W]`` (normalised) -> ``[B, feature_dim]``."""
        return self.project(self.grid(self.features(frames)).flatten(1))


def _torchvision_backbone(name: str, weights_path: str | None) -> tuple[nn.Module, int]:
    """A torchvision ImageNet CNN without its classifier, and its feature size; never downloads."""
    import torchvision

    if name == "resnet18":
        net = torchvision.models.resnet18(weights=None)
    else:
        net = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
    if weights_path is not None:
        from vidattack.models.weights import load_state_dict_file

        state = load_state_dict_file(weights_path)
        # ImageNet checkpoints carry the 1000-class classifier (and Inception's auxiliary head),
        # which this backbone drops.
        state = {k: v for k, v in state.items() if not k.startswith(("fc.", "AuxLogits."))}
        net.load_state_dict(state, strict=False)
    dim = net.fc.in_features
    net.fc = nn.Identity()
    return net, dim


class CNNRNN(nn.Module):
    """Per-frame CNN + recurrent (or pooling) head on ``[N, T, C, H, W]`` normalised clips.

    Args:
        num_classes: number of output classes.
        backbone: ``"small"`` (:class:`SmallFrameCNN`), ``"resnet18"`` (512-d) or ``"inception_v3"``
            (2048-d, frames of at least 75x75) from torchvision, built with ``weights=None``.
        head: ``"rnn"`` (tanh), ``"lstm"``, ``"gru"`` or ``"pool"`` (mean over time, no recurrence).
        hidden_size: units of the recurrent layer.
        num_layers: stacked recurrent layers.
        width, feature_dim, grid: settings of the small backbone (``width`` multiplies 32/64/128 channels).
        dropout: dropout before the classifier.
        readout: ``"last"`` (video logit = last time step, the default) or ``"mean"`` (mean over time)
            for the recurrent heads; the pool head always uses the mean.
        backbone_weights: local file (safetensors or a ``torch.save`` state dict, loaded without
            executing code) with ImageNet weights for a torchvision backbone.
        in_channels: input channels.
    """

    def __init__(
        self,
        num_classes: int = 101,
        *,
        backbone: str = "small",
        head: str = "lstm",
        hidden_size: int = 256,
        num_layers: int = 1,
        width: float = 1.0,
        feature_dim: int = 128,
        grid: int = 4,
        dropout: float = 0.0,
        readout: str = "last",
        backbone_weights: str | None = None,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {backbone!r}")
        if readout not in ("last", "mean"):
            raise ValueError(f"readout must be 'last' or 'mean', got {readout!r}")
        if backbone == "small":
            if backbone_weights is not None:
                raise ValueError("backbone_weights applies to torchvision backbones only, not 'small'")
            self.cnn: nn.Module = SmallFrameCNN(width, feature_dim, grid, in_channels)
            dim = feature_dim
        else:
            self.cnn, dim = _torchvision_backbone(backbone, backbone_weights)
        self.head = head
        self.readout = "mean" if head == "pool" else readout
        if head == "pool":
            self.rnn: nn.Module | None = None
            out_dim = dim
        else:
            rnn_class = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[head]
            self.rnn = rnn_class(dim, hidden_size, num_layers=num_layers, batch_first=True)
            out_dim = hidden_size
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(out_dim, num_classes)

    def frame_features(self, x: Tensor) -> Tensor:
        """``x [N, T, C, H, W]`` -> per-frame CNN features ``[N, T, D]``."""
        n, t = x.shape[:2]
        return self.cnn(x.reshape(n * t, *x.shape[2:])).reshape(n, t, -1)

    def frame_logits(self, x: Tensor) -> Tensor:
        """``x [N, T, C, H, W]`` -> per-time-step logits ``[N, T, num_classes]``.

        For the recurrent heads, step ``t`` sees frames ``0..t`` (the classifier on hidden state ``h_t``);
        for the pool head, each frame's own feature.
        """
        states = self.frame_features(x)
        if self.rnn is not None:
            states, _ = self.rnn(states)
        return self.classifier(self.dropout(states))

    def forward(self, x: Tensor) -> Tensor:
        """``x [N, T, C, H, W]`` (normalised) -> video logits ``[N, num_classes]`` (see module docstring)."""
        logits = self.frame_logits(x)
        return logits[:, -1] if self.readout == "last" else logits.mean(dim=1)
