"""vidattack.viz.frame_grid: chosen frames and column titles."""

from __future__ import annotations

import pytest
import torch

from vidattack import viz


def test_frame_grid_shows_the_chosen_frames_with_their_titles(tmp_path):
    clean = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    adversarial = clean.clone()
    adversarial[2] = (adversarial[2] + 0.05).clamp(0, 1)
    path = viz.frame_grid(
        clean, adversarial, tmp_path / "g.png", frames=[2, 0], column_titles=["t=2*", "t=0"]
    )
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_frame_grid_rejects_frames_out_of_range_and_titles_of_the_wrong_length(tmp_path):
    clean = torch.rand(4, 3, 8, 8)
    with pytest.raises(ValueError, match="frames"):
        viz.frame_grid(clean, clean, tmp_path / "a.png", frames=[4])
    with pytest.raises(ValueError, match="column_titles"):
        viz.frame_grid(clean, clean, tmp_path / "b.png", frames=[0, 1], column_titles=["only one"])
    assert not (tmp_path / "a.png").exists() and not (tmp_path / "b.png").exists()
