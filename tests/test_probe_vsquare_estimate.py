"""The white-box probe's energy read-outs (benchmarks/probe_vsquare_estimate.py) on gradients built to
have a known structure."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest
import torch

from conftest import benchmark_script


@pytest.fixture(scope="module")
def probe() -> Iterator[ModuleType]:
    yield from benchmark_script("probe_vsquare_estimate")


def test_where_energy_finds_the_frame_and_the_cell(probe: ModuleType) -> None:
    grad = torch.zeros(2, 16, 3, 32, 32)
    grad[:, 0, :, 8:16, 8:16] = torch.randn(2, 3, 8, 8)  # frame 0, cell (1, 1) of the 4x4 grid
    per_frame, per_cell = probe.where_energy(grad)
    assert len(per_frame) == 16 and len(per_cell) == 16
    assert per_frame[0] == pytest.approx(1.0) and sum(per_frame[1:]) == pytest.approx(0.0)
    assert per_cell[1 * 4 + 1] == pytest.approx(1.0)


def test_a_gradient_spread_evenly_gives_even_shares(probe: ModuleType) -> None:
    per_frame, per_cell = probe.where_energy(torch.ones(1, 16, 3, 32, 32))
    assert per_frame == pytest.approx([1 / 16] * 16) and per_cell == pytest.approx([1 / 16] * 16)


def test_the_spectrum_and_subspaces_of_constant_and_alternating_gradients(probe: ModuleType) -> None:
    pattern = torch.randn(1, 1, 3, 32, 32)
    constant = pattern.expand(1, 16, 3, 32, 32)
    spectrum = probe.temporal_spectrum(constant)
    assert spectrum[0] == pytest.approx(1.0) and sum(spectrum[1:]) == pytest.approx(0.0, abs=1e-6)
    assert probe.subspace_energy(constant)["constant in time"][0] == pytest.approx(1.0)
    alternating = constant * (1 - 2 * (torch.arange(16) % 2)).view(1, 16, 1, 1, 1)
    assert probe.temporal_spectrum(alternating)[-1] == pytest.approx(1.0)
    assert probe.subspace_energy(alternating)["constant in time"][0] == pytest.approx(0.0, abs=1e-6)
