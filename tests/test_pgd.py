import pytest
import torch

from vidattack import WhiteBox
from vidattack.attacks import pgd


def test_pgd_succeeds_within_eps_and_range(toy_model, toy_data):
    videos, labels = toy_data
    original = videos.clone()
    result = pgd(WhiteBox(toy_model), videos, labels, eps=0.1, steps=30)
    assert torch.equal(videos, original)  # input not modified
    assert result.success.float().mean() == 1.0
    delta = result.adversarial - videos
    assert delta.abs().max() <= 0.1 + 1e-6
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    with torch.no_grad():
        assert torch.equal(toy_model(result.adversarial).argmax(1), result.adv_label)
    assert (result.adv_label != labels).all()
    assert result.queries.sum() == 0 and (result.iterations > 0).all()
    assert len(result.trace) == len(videos) and result.trace[0][0][0] == 0


def test_pgd_targeted_and_l2(toy_model, toy_data):
    videos, labels = toy_data
    target = (labels + 1) % 3
    result = pgd(WhiteBox(toy_model), videos, labels, target=target, eps=0.15, steps=40)
    assert (result.adv_label[result.success] == target[result.success]).all()
    assert result.success.float().mean() >= 0.8
    l2 = pgd(WhiteBox(toy_model), videos, labels, eps=3.0, norm="l2", steps=30)
    norms = (l2.adversarial - videos).flatten(1).norm(dim=1)
    assert (norms <= 3.0 + 1e-4).all()
    assert l2.success.float().mean() >= 0.8


def test_pgd_respects_masks_exactly(toy_model, toy_data):
    videos, labels = toy_data
    frame_mask = torch.zeros(8, dtype=torch.bool)
    frame_mask[[1, 4]] = True
    pixel_mask = torch.zeros(16, 16)
    pixel_mask[4:12, 2:10] = 1
    result = pgd(WhiteBox(toy_model), videos, labels, eps=0.2, steps=10, frame_mask=frame_mask,
                 pixel_mask=pixel_mask, random_start=True, generator=torch.Generator().manual_seed(0),
                 early_stop=False)
    delta = result.adversarial - videos
    allowed = frame_mask.reshape(1, 8, 1, 1, 1) & pixel_mask.bool().reshape(1, 1, 1, 16, 16)
    assert (delta[~allowed.expand_as(delta)] == 0).all()
    assert (delta[allowed.expand_as(delta)] != 0).any()


def test_pgd_same_seed_same_result(toy_model, toy_data):
    videos, labels = toy_data
    runs = [
        pgd(WhiteBox(toy_model), videos, labels, eps=0.05, steps=5, random_start=True,
            generator=torch.Generator().manual_seed(7))
        for _ in range(2)
    ]
    assert torch.equal(runs[0].adversarial, runs[1].adversarial)
    other = pgd(WhiteBox(toy_model), videos, labels, eps=0.05, steps=5, random_start=True,
                generator=torch.Generator().manual_seed(8))
    assert not torch.equal(runs[0].adversarial, other.adversarial)


def test_pgd_bad_input(toy_model, toy_data):
    videos, labels = toy_data
    with pytest.raises(ValueError, match="WhiteBox"):
        pgd(toy_model, videos, labels)
    with pytest.raises(ValueError, match="eps"):
        pgd(WhiteBox(toy_model), videos, labels, eps=0)
    with pytest.raises(ValueError, match="frame_mask"):
        pgd(WhiteBox(toy_model), videos, labels, frame_mask=torch.ones(3))
    with pytest.raises(ValueError, match="pixel_mask"):
        pgd(WhiteBox(toy_model), videos, labels, pixel_mask=torch.ones(5, 5))
    with pytest.raises(ValueError, match="target"):
        pgd(WhiteBox(toy_model), videos, labels, target=9)
