"""Fast tests of the sparse l2,1 attack (Wei et al. 2019): norm, masks, universal perturbations, seeds."""

from __future__ import annotations

import math

import pytest
import torch

from vidattack import WhiteBox, methods
from vidattack.attacks.sparse_l21 import (
    NEAR_ZERO,
    frame_l2_norms,
    l21_norm,
    parse_frame_mask,
    regulariser,
    sparse_l21,
    sparse_l21_fixed,
    sparse_loss,
)
from vidattack.attacks.sparse_universal import (
    apply_universal,
    frame_predictions,
    propagation_attack,
    propagation_profile,
    sparse_universal,
)


class FrameLinear(torch.nn.Module):
    """A linear per-frame scorer with a recurrent-style cumulative read-out and per-frame weights falling
    from 1 to 0.3 over time: cheap, with ``frame_logits``, and with a known answer for the regulariser
    (l2,1 concentrates the perturbation on the most influential frames, l2 spreads it over all frames)."""

    def __init__(self, frames: int = 8, classes: int = 3, size: int = 8) -> None:
        super().__init__()
        dim = 3 * size * size
        self.weight = torch.nn.Parameter(
            torch.randn(classes, dim, generator=torch.Generator().manual_seed(0)) / dim**0.5
        )
        self.register_buffer("frame_weight", torch.linspace(1.0, 0.3, frames))

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        scores = x.flatten(2) @ self.weight.T * self.frame_weight[: x.shape[1]].reshape(1, -1, 1)
        return scores.cumsum(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.frame_logits(x)[:, -1]


@pytest.fixture(scope="module")
def linear():
    """``(model, videos [4,8,3,8,8], labels)`` with labels = the model's own predictions."""
    model = FrameLinear().eval()
    videos = torch.rand(4, 8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        labels = model(videos).argmax(1)
    return model, videos, labels


def test_l21_norm_matches_hand_computation():
    delta = torch.zeros(1, 3, 1, 2, 2)
    delta[0, 0, 0, 0, 0], delta[0, 0, 0, 1, 1] = 3.0, -4.0  # frame 0: sqrt(9 + 16) = 5
    delta[0, 2] = 0.5  # frame 2: four values 0.5 -> sqrt(4 * 0.25) = 1; frame 1 stays zero
    assert frame_l2_norms(delta).tolist() == [[5.0, 0.0, 1.0]]
    assert l21_norm(delta).item() == pytest.approx(6.0)
    assert regulariser(delta, "l2").item() == pytest.approx(math.sqrt(9 + 16 + 1))
    # A zero frame has a finite (zero) gradient: no NaN even without the paper's non-zero init.
    leaf = delta.clone().requires_grad_(True)
    l21_norm(leaf).sum().backward()
    assert torch.isfinite(leaf.grad).all()
    assert (leaf.grad[0, 1] == 0).all()
    assert leaf.grad[0, 0, 0, 0, 0].item() == pytest.approx(3 / 5)


def test_untargeted_loss_is_minus_log_one_minus_p():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]])
    label = torch.tensor([0, 2])
    expected = -torch.log(1 - torch.softmax(logits, dim=1)[[0, 1], [0, 2]])
    assert torch.allclose(sparse_loss(logits, label, None), expected, atol=1e-6)
    targeted = sparse_loss(logits, label, torch.tensor([1, -1]))
    assert targeted[0].item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits[:1], torch.tensor([1])).item()
    )
    assert targeted[1].item() == pytest.approx(expected[1].item())


def test_parse_frame_mask_forms():
    assert parse_frame_mask("all", 5).tolist() == [True] * 5
    assert parse_frame_mask("first:2", 5).tolist() == [True, True, False, False, False]
    assert parse_frame_mask("last:1", 5).tolist() == [False, False, False, False, True]
    assert parse_frame_mask("frames:1,3", 5).tolist() == [False, True, False, True, False]
    assert parse_frame_mask([0, 4], 5).tolist() == [True, False, False, False, True]
    first = parse_frame_mask("random:3", 16, generator=torch.Generator().manual_seed(4))
    again = parse_frame_mask("random:3", 16, generator=torch.Generator().manual_seed(4))
    assert int(first.sum()) == 3 and torch.equal(first, again)
    for bad in ("first:0", "first:6", "frames:7", "middle:2", "random:x", "frames:"):
        with pytest.raises(ValueError, match="mask|frame index"):
            parse_frame_mask(bad, 5)


def test_sparse_fools_toy_model_and_keeps_bounds(toy_model, toy_data):
    videos, labels = toy_data[0][:2], toy_data[1][:2]
    original = videos.clone()
    result = sparse_l21(WhiteBox(toy_model), videos, labels, lam=0.05, steps=25)
    assert torch.equal(videos, original)
    assert bool(result.success.all())
    assert result.adversarial.min() >= 0 and result.adversarial.max() <= 1
    with torch.no_grad():
        assert torch.equal(toy_model(result.adversarial).argmax(1), result.adv_label)
    assert result.queries.sum() == 0 and result.method == "sparse"
    assert torch.allclose(torch.stack([e["l21"] for e in result.extras]), l21_norm(result.adversarial - videos), rtol=1e-5)


def test_targeted_and_keep_modes(linear):
    model, videos, labels = linear
    target = (labels + 1) % 3
    result = sparse_l21(WhiteBox(model), videos, labels, target=target, lam=0.01, steps=60)
    assert bool(result.success.all()) and torch.equal(result.adv_label, target)
    smallest = sparse_l21(WhiteBox(model), videos, labels, target=target, lam=0.01, steps=60, keep="smallest")
    assert bool(smallest.success.all())
    # "smallest" keeps the successful iterate of least l2,1 norm, so it can never be larger than "last"'s.
    assert all(s["l21"] <= r["l21"] + 1e-6 for s, r in zip(smallest.extras, result.extras, strict=True))


def test_l21_gives_near_zero_frames_where_l2_gives_none(linear):
    model, videos, labels = linear
    sparse = sparse_l21(WhiteBox(model), videos, labels, lam=0.3, norm="l21", steps=100)
    dense = sparse_l21(WhiteBox(model), videos, labels, lam=0.3, norm="l2", steps=100)
    assert bool(sparse.success.all()) and bool(dense.success.all())
    frame_max = lambda r: (r.adversarial - videos).abs().flatten(2).amax(2)  # noqa: E731
    assert (frame_max(dense) >= NEAR_ZERO).all()  # l2 leaves no frame unperturbed
    assert ((frame_max(sparse) < NEAR_ZERO).sum(dim=1) >= 3).all()  # l2,1 empties frames ...
    assert (frame_max(sparse)[:, 0] > 10 * NEAR_ZERO).all()  # ... and keeps the most influential one
    assert torch.equal(torch.stack([e["near_zero_frames"] for e in sparse.extras]), (frame_max(sparse) < NEAR_ZERO).sum(dim=1))


def test_mask_is_respected_exactly(linear):
    model, videos, labels = linear
    result = sparse_l21(WhiteBox(model), videos, labels, mask=[1, 4], steps=30)
    delta = result.adversarial - videos
    allowed = torch.zeros(8, dtype=torch.bool)
    allowed[[1, 4]] = True
    assert (delta[:, ~allowed] == 0).all()
    assert (delta[:, allowed] != 0).any()
    assert result.extras[0]["frame_mask"].tolist() == allowed.tolist()
    assert all(entry["zero_frames"] >= 6 for entry in result.extras)
    first = sparse_l21(WhiteBox(model), videos, labels, mask=[0, 1, 2], norm="l2", steps=5, keep="final")
    assert ((first.adversarial - videos)[:, 3:] == 0).all()
    assert ((first.adversarial - videos)[:, :3] != 0).any()


def test_same_seed_same_result(linear):
    # A random frame mask ("random:2", the CLI's form) is drawn by the methods layer from the run's seed.
    model, videos, labels = linear

    def run(seed: int):
        return methods.run("sparse", model, videos, labels, seed=seed, params={"mask": "random:2", "steps": 10})

    first, second, other = run(3), run(3), run(11)
    assert torch.equal(first.adversarial, second.adversarial)
    assert torch.equal(first.extras[0]["frame_mask"], second.extras[0]["frame_mask"])
    assert not torch.equal(first.extras[0]["frame_mask"], other.extras[0]["frame_mask"])
    assert ((first.adversarial - videos)[:, ~first.extras[0]["frame_mask"]] == 0).all()
    with pytest.raises(ValueError, match="parse_frame_mask"):
        sparse_l21(WhiteBox(model), videos, labels, mask="random:2", steps=1)  # the core takes typed masks


def test_bad_input_raises(linear):
    model, videos, labels = linear
    with pytest.raises(ValueError, match="WhiteBox"):
        sparse_l21(model, videos, labels)
    for kwargs, word in (
        ({"norm": "l1"}, "norm"),
        ({"lam": -1.0}, "lam"),
        ({"init": 0.0}, "init"),
        ({"mask": "first:9"}, "mask"),
        ({"keep": "any"}, "keep"),
        ({"target": 7}, "target"),
    ):
        with pytest.raises(ValueError, match=word):
            sparse_l21(WhiteBox(model), videos, labels, steps=1, **kwargs)
    with pytest.raises(ValueError, match="videos"):
        sparse_l21(WhiteBox(model), videos * 2, labels)


def test_registry_entries_parse_cli_params(linear):
    model, videos, labels = linear
    assert methods.parse_param("sparse", "mask=first:2") == ("mask", "first:2")
    assert methods.parse_param("sparse", "lam=0.5") == ("lam", 0.5)
    assert methods.parse_param("sparse", "norm=l2") == ("norm", "l2")
    result = methods.run(
        "sparse",
        model,
        videos[:1],
        labels[:1],
        params={"mask": "first:2", "norm": "l2", "steps": 3, "keep": "final"},
    )
    assert result.method == "sparse" and result.extras[0]["norm"] == "l2"
    assert ((result.adversarial - videos[:1])[:, 2:] == 0).all()
    prop = methods.run("sparse-prop", model, videos[:1], labels[:1], params={"num_frames": 3, "steps": 3})
    assert prop.method == "sparse-prop" and ((prop.adversarial - videos[:1])[:, 3:] == 0).all()


def test_universal_is_one_tensor_for_every_video(linear):
    model, videos, labels = linear
    result = sparse_universal(
        WhiteBox(model),
        videos[:3],
        labels[:3],
        mask=[0, 1, 2],
        epochs=3,
        batch_size=2,
        test_videos=videos[3:],
        test_label=labels[3:],
        generator=torch.Generator().manual_seed(0),
    )
    perturbation = result.perturbation
    assert perturbation.shape == videos.shape[1:]
    assert (perturbation[3:] == 0).all() and (perturbation[:3] != 0).any()
    applied = apply_universal(perturbation, videos)
    assert torch.equal(applied, (videos + perturbation.unsqueeze(0)).clamp(0, 1))
    # The reported success is exactly that of this single tensor on every video.
    with torch.no_grad():
        fooled = model(applied).argmax(1) != labels
    assert result.train_success.tolist() == fooled[:3].tolist()
    assert result.test_success.tolist() == fooled[3:].tolist()
    assert result.train_fooling == pytest.approx(float(fooled[:3].float().mean()))
    again = sparse_universal(
        WhiteBox(model),
        videos[:3],
        labels[:3],
        mask=[0, 1, 2],
        epochs=3,
        batch_size=2,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(again.perturbation, perturbation)
    with pytest.raises(ValueError, match="perturbation"):
        apply_universal(perturbation[:3], videos)


def test_universal_fools_training_videos(linear):
    model, videos, labels = linear
    told: list[tuple[int, float, float]] = []
    result = sparse_universal(
        WhiteBox(model), videos, labels, lam=0.01, epochs=30, batch_size=4, lr=0.02,
        progress=lambda *row: told.append(row),
    )  # fmt: skip
    assert result.train_fooling == 1.0
    assert len(result.history) == 30 and result.summary()["perturbed_frames"] == 8
    assert told == result.history  # progress hears of every epoch as it ends


def test_universal_lr_end_decays_the_step_and_is_checked(linear):
    model, videos, labels = linear

    def run(**options: float) -> torch.Tensor:
        return sparse_universal(
            WhiteBox(model), videos, labels, lam=0.01, epochs=6, batch_size=2,
            generator=torch.Generator().manual_seed(0), **options,
        ).perturbation  # fmt: skip

    constant = run()
    assert torch.equal(constant, run(lr_end=1.0))  # the default is the constant rate
    decayed = run(lr_end=0.05)
    assert not torch.equal(constant, decayed)
    # A smaller step late in the run moves the perturbation less in total.
    assert float(decayed.abs().sum()) < float(constant.abs().sum())
    with pytest.raises(ValueError, match="lr_end"):
        run(lr_end=0.0)


def test_propagation_attack_perturbs_only_first_frames(linear):
    model, videos, labels = linear
    wb = WhiteBox(model)
    result = propagation_attack(wb, videos, labels, num_frames=3, steps=60, lam=0.01)
    delta = result.adversarial - videos
    assert (delta[:, 3:] == 0).all() and (delta[:, :3] != 0).any()
    assert len(result.extras) == 4 and all(entry["num_frames"] == 3 for entry in result.extras)
    # The spliced frames are exactly the shortened video's adversarial frames; success is on the full video.
    with torch.no_grad():
        assert torch.equal(model(result.adversarial).argmax(1), result.adv_label)
    assert all(entry["short_success"] for entry in result.extras)
    profile = propagation_profile(wb, videos, result.adversarial)
    assert profile["frame_map"].shape == (4, 8) and (profile["frame_map"][:, 3:] == 0).all()
    labels_per_frame = frame_predictions(wb, result.adversarial)
    later = (labels_per_frame[:, 3:] != labels.reshape(-1, 1)).float().mean(dim=1)
    assert torch.allclose(torch.tensor([entry["later_frames_fooled"] for entry in result.extras]), later)
    with pytest.raises(ValueError, match="num_frames"):
        propagation_attack(wb, videos, labels, num_frames=9)


def test_frame_predictions_needs_per_frame_logits(toy_model, toy_data):
    with pytest.raises(ValueError, match="frame_logits"):
        frame_predictions(WhiteBox(toy_model), toy_data[0][:1])


def test_lambda_is_searched_per_video_by_default(linear):
    # A weight far too strong fools nothing; the search falls back to the next weight for those videos.
    model, videos, labels = linear
    fixed = sparse_l21(WhiteBox(model), videos, labels, lam=1000.0, steps=40)
    assert not bool(fixed.success.any()) and {e["stop_reason"] for e in fixed.extras} == {"steps"}
    searched = sparse_l21(WhiteBox(model), videos, labels, lam_grid=(1000.0, 0.01), steps=40)
    assert bool(searched.success.all())
    assert all(e["lam"] == 0.01 and e["lam_tried"] == 2 and e["stop_reason"] == "success" for e in searched.extras)
    again = sparse_l21_fixed(WhiteBox(model), videos, labels, lam=0.01, steps=40)
    assert torch.equal(searched.adversarial, again.adversarial)  # the kept result is that weight's own run
    hopeless = sparse_l21(WhiteBox(model), videos[:2], labels[:2], lam_grid=(1000.0, 500.0), steps=10)
    assert [e["stop_reason"] for e in hopeless.extras] == ["weight-too-strong"] * 2
