"""Counting the clips an attack runs through the model (the progress bar of `vidattack attack`)."""

from __future__ import annotations

import torch
from torch import nn

from vidattack.forward_count import counting_clips
from vidattack.methods.record import attack_video


class _Linear(nn.Module):
    """A linear video classifier ``[N,T,C,H,W] -> [N,3]`` that declares its classes (no extra forward)."""

    num_classes = 3

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(2 * 3 * 4 * 4, 3)

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        return self.head(videos.flatten(1))


def test_a_module_keeps_its_gradients_and_loses_the_hook_on_exit() -> None:
    model, counts = _Linear(), []
    videos = torch.rand(5, 2, 3, 4, 4, requires_grad=True)
    with counting_clips(model, counts.append) as counted:
        assert counted is model
        counted(videos).sum().backward()
        counted(videos[:2])
    assert counts == [5, 2] and videos.grad is not None and videos.grad.abs().sum() > 0
    model(videos)
    assert counts == [5, 2]  # the hook is gone


def test_a_plain_callable_is_wrapped_with_its_attributes() -> None:
    class Service:
        black_box_only = True

        def __call__(self, videos: torch.Tensor) -> torch.Tensor:
            return torch.zeros(videos.shape[0], 3)

    counts: list[int] = []
    with counting_clips(Service(), counts.append) as counted:
        assert counted.black_box_only is True
        assert counted(torch.rand(4, 2, 3, 4, 4)).shape == (4, 3)
    assert counts == [4]


def test_a_black_box_attack_reports_its_queries_as_clips() -> None:
    with torch.random.fork_rng():  # fixed weights without touching the global generator
        torch.manual_seed(0)
        model = _Linear().eval()
    video = torch.rand(1, 2, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        label = int(model(video).argmax(1))
    counts: list[int] = []
    _, record = attack_video(
        "vsquare", model, video, label, budget=40, eps=0.001, seed=0, on_clips=counts.append
    )
    assert record["queries"] > 0 and sum(counts) == record["queries"]
    _, silent = attack_video("vsquare", model, video, label, budget=40, eps=0.001, seed=0)
    assert silent["queries"] == record["queries"]  # counting changes nothing
