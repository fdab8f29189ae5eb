"""Tests of V-BAD's priors: partitions (index tensors) and tentative perturbations (Eq. 3)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vidattack.models.image import ImageBackbone, SmallImageCNN
from vidattack.priors import (
    Partition,
    TransferredTentative,
    make_partition,
    make_tentative,
    partition_pixel,
    partition_random,
    partition_uniform,
    random_grid_offset,
    tentative_random,
    tentative_static,
)
from vidattack.priors.tentative import feature_loss_gradient

SHAPE = (4, 3, 16, 16)


def test_uniform_partition_is_a_patch_grid_per_frame() -> None:
    part = partition_uniform(SHAPE, 4)
    assert part.num_parts == 4 * 4 * 4
    index = part.index.reshape(SHAPE)
    # all channels of a pixel share a part; a 4x4 block of pixels is one part; frames never share parts
    assert torch.equal(index[:, 0], index[:, 2])
    assert index[0, 0, 0, 0] == index[0, 0, 3, 3] != index[0, 0, 0, 4]
    assert set(index[1].unique().tolist()).isdisjoint(index[0].unique().tolist())
    assert torch.equal(part.part_sizes(), torch.full((64,), 3 * 16))


def test_uniform_partition_handles_sizes_not_divisible() -> None:
    part = partition_uniform((2, 3, 10, 10), 3)
    sizes = part.part_sizes() // 3
    assert part.num_parts == 18 and int(sizes.sum()) == 2 * 100
    assert int(sizes.max()) - int(sizes.min()) <= 7  # 3x3 / 3x4 / 4x4 cells


def test_shifted_uniform_partition_tiles_each_frame_with_rectangles() -> None:
    assert torch.equal(partition_uniform(SHAPE, 4, offset=(0, 0)).index, partition_uniform(SHAPE, 4).index)
    part = partition_uniform(SHAPE, 4, offset=(1, 2))
    # one more (partial) row and column of patches: 5 x 5 per frame, numbered without gaps
    assert part.num_parts == 4 * 5 * 5
    assert torch.equal(part.index.unique(), torch.arange(part.num_parts))
    index = part.index.reshape(SHAPE)
    assert torch.equal(index[:, 0], index[:, 1]) and torch.equal(index[:, 0], index[:, 2])
    for number in range(part.num_parts):
        t, _, rows, cols = (index == number).nonzero(as_tuple=True)
        assert t.unique().numel() == 1  # a part never spans two frames
        height = int(rows.max() - rows.min()) + 1
        width = int(cols.max() - cols.min()) + 1
        assert rows.numel() == 3 * height * width  # a full rectangle of adjacent pixels
    # the borders moved by (1, 2): rows 1-4 and columns 2-5 now make one patch
    frame = index[0, 0]
    assert frame[1, 2] == frame[4, 5] != frame[0, 2] and frame[1, 2] != frame[1, 1]
    assert frame[1, 2] != frame[5, 2] and frame[1, 2] != frame[1, 6]
    with pytest.raises(ValueError, match="offset"):
        partition_uniform(SHAPE, 4, offset=(4, 0))


def test_random_grid_offset_follows_the_generator_and_stays_in_range() -> None:
    draws = [random_grid_offset(SHAPE, 4, torch.Generator().manual_seed(s)) for s in range(40)]
    assert all(0 <= dy < 4 and 0 <= dx < 4 for dy, dx in draws) and len(set(draws)) > 5
    assert random_grid_offset(SHAPE, 4, torch.Generator().manual_seed(3)) == draws[3]
    assert random_grid_offset(SHAPE, 16) == (0, 0)  # one-pixel patches cannot shift


def test_random_partition_has_balanced_parts_and_follows_generator() -> None:
    a = partition_random(SHAPE, 64, generator=torch.Generator().manual_seed(1))
    b = partition_random(SHAPE, 64, generator=torch.Generator().manual_seed(1))
    c = partition_random(SHAPE, 64, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a.index, b.index) and not torch.equal(a.index, c.index)
    sizes = a.part_sizes()
    assert sizes.numel() == 64 and int(sizes.max() - sizes.min()) <= 1
    # random parts are not spatially local: a part spans several frames
    frames = torch.arange(4).repeat_interleave(3 * 16 * 16)
    assert len(frames[a.index == 0].unique()) > 1


def test_make_partition_random_defaults_to_the_uniform_part_count() -> None:
    assert (
        make_partition("random", SHAPE, patches=8).num_parts
        == make_partition("uniform", SHAPE, patches=8).num_parts
    )


def test_expand_is_a_gather_and_matches_dense_directions() -> None:
    part = partition_uniform((2, 1, 4, 4), 2)
    tentative = torch.randn(2, 1, 4, 4)
    coefficients = torch.randn(3, part.num_parts)
    expanded = part.expand(coefficients) * tentative.reshape(-1)
    dense = coefficients @ part.directions(tentative)  # sum_i v_i d^(i) (Eq. 4/5)
    assert torch.allclose(expanded, dense, atol=1e-6)


def test_pixel_partition_is_identity_without_index() -> None:
    part = partition_pixel(SHAPE)
    assert part.index is None and part.num_parts == 4 * 3 * 16 * 16
    values = torch.randn(2, part.num_parts)
    assert part.expand(values) is values


def test_partition_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="patches"):
        partition_uniform(SHAPE, 32)
    with pytest.raises(ValueError, match="partition must be one of"):
        make_partition("semantic", SHAPE)
    with pytest.raises(ValueError, match="coefficients"):
        partition_uniform(SHAPE, 2).expand(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="shape"):
        partition_uniform((3, 16, 16), 2)
    assert isinstance(partition_uniform((1, *SHAPE), 2), Partition)


def test_static_and_random_tentatives() -> None:
    video = torch.rand(SHAPE)
    assert torch.equal(tentative_static(video), torch.ones(SHAPE))
    a = tentative_random(video, torch.Generator().manual_seed(0))
    b = tentative_random(video, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and set(a.unique().tolist()) == {-1.0, 1.0}
    assert 0.4 < float((a > 0).float().mean()) < 0.6


def _image_model(seed: int) -> ImageBackbone:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return ImageBackbone(SmallImageCNN(10, channels=(8, 16)))


def test_feature_loss_gradient_matches_eq3_autograd() -> None:
    model = _image_model(0).eval()
    frames = torch.rand(SHAPE)
    with torch.no_grad():
        reference = model.features(torch.rand(SHAPE))
    mask = (torch.rand(reference.shape) < 0.5).float()
    grad = feature_loss_gradient(model, frames, reference, mask)
    x = frames.clone().requires_grad_(True)
    loss = (
        sum(((mask[t] * (model.features(x[t : t + 1])[0] - reference[t])) ** 2).sum() for t in range(4)) / 4
    )
    (expected,) = torch.autograd.grad(loss, x)
    assert torch.allclose(grad, expected, atol=1e-5, rtol=1e-4)


def test_transferred_tentative_signs_ensemble_mean_and_determinism() -> None:
    models = [_image_model(0), _image_model(1)]
    video = torch.rand(1, *SHAPE)
    one = TransferredTentative(models, generator=torch.Generator().manual_seed(3))(video)
    two = TransferredTentative(models, generator=torch.Generator().manual_seed(3))(video)
    assert one.shape == video.shape and torch.equal(one, two)
    # mean of two signs, with the ties of the even ensemble broken: no pixel is frozen at 0
    assert set(one.unique().tolist()) <= {-1.0, -0.5, 0.5, 1.0}
    assert float((one.abs() == 0.5).float().mean()) > 0.05  # the two models do disagree somewhere
    # without masks the result is checkable: agreement -> that sign, a tie -> sign of the pooled gradient
    full = TransferredTentative(models, mask_prob=1.0, generator=torch.Generator().manual_seed(3))
    h = full(video)[0]
    grads = [
        feature_loss_gradient(m, video[0], ref, torch.ones_like(ref))
        for m, ref in zip(models, full._references, strict=True)
    ]
    signs = grads[0].sign() + grads[1].sign()
    pooled = (grads[0] / grads[0].abs().mean() + grads[1] / grads[1].abs().mean()).sign()
    assert torch.equal(h[signs != 0], signs[signs != 0] / 2)
    assert torch.equal(h[signs == 0], pooled[signs == 0] / 2)
    # the weights of the image models are not trained by it
    assert all(not p.requires_grad for m in models for p in m.parameters())


def test_transferred_tentative_first_layer_is_each_models_first_block() -> None:
    models = [_image_model(0), ImageBackbone(SmallImageCNN(10, channels=(4, 8, 8)))]
    video = torch.rand(SHAPE)
    first = TransferredTentative(models, layer="first", generator=torch.Generator().manual_seed(0))
    named = TransferredTentative(models, layer="block1", generator=torch.Generator().manual_seed(0))
    assert first.layers == ["block1", "block1"] and torch.equal(first(video), named(video))
    # the first block's features keep the frame's resolution: Eq. 3's feature map is 16x16 here
    assert first._references is not None and first._references[0].shape[-2:] == (16, 16)

    class Bare(nn.Module):
        def features(self, images, layer=None):
            return images

    with pytest.raises(ValueError, match="feature_layers"):
        TransferredTentative([Bare()], layer="first")


def test_transferred_tentative_targeted_uses_reference_features() -> None:
    model = _image_model(0)
    video, reference = torch.rand(SHAPE), torch.rand(SHAPE)
    tentative = TransferredTentative([model], reference_video=reference, mask_prob=1.0)
    expected = feature_loss_gradient(model, video, model.features(reference).detach(), torch.ones(1)).sign()
    assert torch.equal(tentative(video), expected)
    with pytest.raises(ValueError, match="reference_video"):
        TransferredTentative([model], reference_video=torch.rand(2, 3, 16, 16))(video)


def test_make_tentative_errors() -> None:
    with pytest.raises(ValueError, match="tentative must be one of"):
        make_tentative("semantic")
    with pytest.raises(ValueError, match="image_models"):
        make_tentative("transferred", image_models=())
    with pytest.raises(ValueError, match="features"):
        make_tentative("transferred", image_models=[nn.Linear(2, 2)])
