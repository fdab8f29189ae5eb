"""Architectures, the wrapper, image backbones and the registry (tiny sizes; full sizes marked slow)."""

from __future__ import annotations

import pytest
import torch

from vidattack.models import ImageBackbone, VideoClassifier, build, registry
from vidattack.models.cnn_rnn import CNNRNN
from vidattack.models.i3d import _same_padding
from vidattack.models.r2plus1d import midplanes

K = 5

# Tiny settings of every video architecture: the same code as the full networks.
TINY_VIDEO = {
    "c3d": {"width": 1 / 16, "fc_dim": 32, "fc_pool": [1, 2, 2], "batch_norm": True},
    "i3d": {"width": 1 / 16},
    "lrcn": {"width": 0.25, "feature_dim": 16, "hidden_size": 16},
    "cnn_rnn": {"head": "gru", "width": 0.25, "feature_dim": 16, "hidden_size": 16},
    "r2plus1d": {"width": 1 / 16},
}


def _seeded_videos(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", sorted(TINY_VIDEO))
def test_tiny_video_architectures_forward_and_backward(arch: str) -> None:
    model = build(arch, num_classes=K, seed=0, **TINY_VIDEO[arch])
    assert isinstance(model, VideoClassifier)
    videos = _seeded_videos(2, 16, 3, 32, 32).requires_grad_(True)
    logits = model(videos)
    assert logits.shape == (2, K)
    logits.sum().backward()
    assert videos.grad is not None and videos.grad.shape == videos.shape
    assert float(videos.grad.abs().sum()) > 0
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("arch", ["r3d_18", "mc3_18", "r2plus1d_18", "swin3d_t"])
def test_torchvision_video_models_small_input(arch: str) -> None:
    model = build(arch, num_classes=K, seed=0).eval()
    with torch.no_grad():
        assert model(_seeded_videos(1, 8, 3, 32, 32)).shape == (1, K)


@pytest.mark.parametrize("head", ["rnn", "lstm", "gru", "pool"])
def test_cnn_rnn_frame_logits_and_readout(head: str) -> None:
    model = build(
        "cnn_rnn", num_classes=K, head=head, width=0.25, feature_dim=16, hidden_size=16, seed=1
    ).eval()
    videos = _seeded_videos(3, 6, 3, 32, 32)
    with torch.no_grad():
        frames = model.frame_logits(videos)
        logits = model(videos)
    assert frames.shape == (3, 6, K)
    expected = frames.mean(dim=1) if head == "pool" else frames[:, -1]
    torch.testing.assert_close(logits, expected)


def test_recurrent_frame_logits_are_causal() -> None:
    """Step t of a recurrent head sees frames 0..t only: changing the last frame leaves earlier steps."""
    model = build("lrcn", num_classes=K, width=0.25, feature_dim=16, hidden_size=16, seed=2).eval()
    videos = _seeded_videos(1, 6, 3, 32, 32)
    changed = videos.clone()
    changed[:, -1] = 1 - changed[:, -1]
    with torch.no_grad():
        a, b = model.frame_logits(videos), model.frame_logits(changed)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_3d_models_have_no_frame_logits() -> None:
    model = build("c3d", num_classes=K, **TINY_VIDEO["c3d"])
    assert not model.has_frame_logits
    with pytest.raises(ValueError, match="no per-frame logits"):
        model.frame_logits(_seeded_videos(1, 16, 3, 32, 32))


def test_wrapper_normalises_and_permutes_once() -> None:
    """The network sees (x - mean) / std in its own layout."""
    seen: dict[str, torch.Tensor] = {}

    class Probe(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen["x"] = x
            return x.flatten(1)[:, :2]

    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 0.125)
    model = VideoClassifier(Probe(), input_layout="ncthw", mean=mean, std=std)
    videos = _seeded_videos(2, 4, 3, 5, 6)
    model(videos)
    expected = (videos - torch.tensor(mean).view(1, 1, 3, 1, 1)) / torch.tensor(std).view(1, 1, 3, 1, 1)
    torch.testing.assert_close(seen["x"], expected.permute(0, 2, 1, 3, 4))


def test_wrapper_rejects_wrong_layout() -> None:
    model = build("c3d", num_classes=K, **TINY_VIDEO["c3d"])
    with pytest.raises(ValueError, match=r"\[N, T, C, H, W\]"):
        model(torch.rand(16, 3, 32, 32))
    with pytest.raises(ValueError, match="channels"):
        model(torch.rand(1, 3, 16, 32, 32))  # [N, C, T, H, W] by mistake


def test_registry_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="unknown arch 'nope'.*c3d"):
        build("nope")
    with pytest.raises(ValueError, match="does not take.*widht"):
        build("c3d", widht=0.5)
    with pytest.raises(ValueError, match="head must be one of"):
        build("cnn_rnn", head="transformer")


def test_build_seed_is_deterministic_and_leaves_global_rng() -> None:
    state = torch.random.get_rng_state()
    a = build("i3d", num_classes=K, seed=3, **TINY_VIDEO["i3d"])
    b = build("i3d", num_classes=K, seed=3, **TINY_VIDEO["i3d"])
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name


def test_i3d_same_padding_keeps_sizes() -> None:
    assert _same_padding(32, 7, 2) == (2, 3)  # out = 16
    assert _same_padding(1, 3, 2) == (1, 1)  # out = 1, never 0
    assert _same_padding(16, 1, 1) == (0, 0)


def test_r2plus1d_full_width_matches_torchvision_state_dict() -> None:
    """At width 1 the configurable R(2+1)D is torchvision's r2plus1d_18 (same keys, shapes, outputs)."""
    from torchvision.models.video import r2plus1d_18

    reference = r2plus1d_18(weights=None, num_classes=K).eval()
    ours = build("r2plus1d", num_classes=K).eval()
    ours.net.load_state_dict(reference.state_dict())  # strict: same keys and shapes
    clip = _seeded_videos(1, 4, 3, 24, 24)
    with torch.no_grad():
        torch.testing.assert_close(
            ours.net(clip.permute(0, 2, 1, 3, 4)), reference(clip.permute(0, 2, 1, 3, 4))
        )
    assert midplanes(64, 64) == 144  # Tran et al. 2018, Sec. 3.5 for a 64 -> 64 block


# ---------------------------------------------------------------------------------------- image


@pytest.mark.parametrize(
    "arch,kwargs,size",
    [
        ("image_small", {}, 32),
        ("image_small", {"channels": [8, 16], "kernel_size": 5}, 32),
        ("resnet18", {}, 32),
        ("densenet121", {}, 32),
        ("inception_v3", {}, 75),
    ],
)
def test_image_backbones_forward_features_embed(arch: str, kwargs: dict, size: int) -> None:
    model = build(arch, num_classes=K, seed=0, **kwargs).eval()
    assert isinstance(model, ImageBackbone)
    images = _seeded_videos(2, 3, size, size)
    with torch.no_grad():
        logits = model(images)
        features = model.features(images)
        embedding = model.embed(images)
        first = model.features(images, model.feature_layers[0])
    assert logits.shape == (2, K)
    assert features.dim() == 4 and features.shape[0] == 2
    assert embedding.shape == (2, features.shape[1])
    # embed is the global average of the last block; features() defaults to the last conv block.
    torch.testing.assert_close(embedding, features.mean(dim=(2, 3)))
    assert first.shape[-1] >= features.shape[-1]
    with pytest.raises(ValueError, match="layer must be one of"):
        model.features(images, "nope")


def test_image_backbone_head_matches_torchvision_forward() -> None:
    """The staged forward equals the torchvision network's own forward (nothing skipped or doubled)."""
    for arch in ("resnet18", "densenet121"):
        model = build(arch, num_classes=K, seed=0).eval()
        images = _seeded_videos(1, 3, 32, 32)
        with torch.no_grad():
            torch.testing.assert_close(model(images), model.net(model.prepare(images)))


def test_image_backbone_resize_to() -> None:
    model = build("inception_v3", num_classes=K, resize_to=80, seed=0).eval()
    with torch.no_grad():
        assert model(_seeded_videos(1, 3, 32, 32)).shape == (1, K)


# ---------------------------------------------------------------------------------------- full size


@pytest.mark.slow
@pytest.mark.parametrize(
    "arch,kwargs",
    [("c3d", {}), ("i3d", {}), ("r2plus1d_18", {}), ("r2plus1d", {}), ("r3d_18", {}), ("mc3_18", {})],
)
def test_full_size_video_models_at_112(arch: str, kwargs: dict) -> None:
    model = build(arch, num_classes=101, seed=0, **kwargs).eval()
    with torch.no_grad():
        assert model(_seeded_videos(1, 16, 3, 112, 112)).shape == (1, 101)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["s3d", "mvit_v2_s"])
def test_torchvision_models_at_224(arch: str) -> None:
    model = build(arch, num_classes=K, seed=0).eval()
    with torch.no_grad():
        assert model(_seeded_videos(1, 16, 3, 224, 224)).shape == (1, K)


@pytest.mark.slow
def test_full_c3d_matches_paper_shapes() -> None:
    """Full C3D: 8 convs, pool5 output 512x1x4x4 = 8192 for 16x112x112, fc6/fc7 of 4096 (Tran et al. 2015)."""
    model = build("c3d", num_classes=487)
    convs = [m for m in model.net.features if isinstance(m, torch.nn.Conv3d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 256, 512, 512, 512, 512]
    assert model.net.classifier[0].in_features == 8192 and model.net.classifier[0].out_features == 4096
    with torch.no_grad():
        pooled = model.net.pool(model.net.features(torch.zeros(1, 3, 16, 112, 112)))
    assert pooled.shape == (1, 512, 1, 4, 4)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet50", "densenet169"])
def test_large_image_backbones(arch: str) -> None:
    model = build(arch, num_classes=K).eval()
    images = _seeded_videos(1, 3, 64, 64)
    with torch.no_grad():
        assert model(images).shape == (1, K)
        assert model.embed(images).shape == (1, 2048 if arch == "resnet50" else 1664)


@pytest.mark.slow
def test_cnn_rnn_resnet18_backbone() -> None:
    model = build("lrcn", num_classes=K, backbone="resnet18", hidden_size=32).eval()
    assert isinstance(model.net, CNNRNN)
    with torch.no_grad():
        assert model.frame_logits(_seeded_videos(1, 4, 3, 64, 64)).shape == (1, 4, K)


def test_registry_lists_every_arch() -> None:
    expected = "c3d i3d lrcn r3d_18 mc3_18 r2plus1d_18 r2plus1d image_small resnet18 resnet50 densenet121"
    for name in (*expected.split(), "densenet169", "inception_v3"):
        assert name in registry.ARCHS
