"""benchmarks/paper_figures.py in its tiny form: it writes the figures' PNGs, and nothing outside --out."""

from __future__ import annotations

import pytest

from conftest import benchmark_script


@pytest.fixture(scope="module")
def paper_figures():
    yield from benchmark_script("paper_figures")


@pytest.mark.parametrize("figure", ["vbad-fig1", "sparse-fig7"])
def test_tiny_figure_writes_a_small_png_and_nothing_outside_out(
    paper_figures, figure, tmp_path, monkeypatch, capsys
):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # a stray relative write would land here
    out = tmp_path / "figs"
    assert paper_figures.main(["--figure", figure, "--tiny", "--out", str(out)]) == 0
    png = out / f"{figure}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size < 200_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "figs"]
    assert list(work.iterdir()) == []
    printed = capsys.readouterr().out
    assert f"== {figure}" in printed and "L-inf" in printed and "perturbed frames" in printed


def test_sparse_attacks_show_their_perturbed_frames_first_and_one_clean_frame(paper_figures):
    assert paper_figures.frames_to_show([3, 7, 9], 16, 4, consecutive=False) == [0, 3, 7, 9]
    assert paper_figures.frames_to_show([0], 16, 2, consecutive=False) == [0, 1]
    # every frame perturbed: spread over the clip; the flicker: consecutive frames
    assert paper_figures.frames_to_show(list(range(16)), 16, 4, consecutive=False) == [0, 5, 10, 15]
    assert paper_figures.frames_to_show(list(range(16)), 16, 4, consecutive=True) == [0, 1, 2, 3]
