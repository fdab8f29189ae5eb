"""The `vidattack` command line: attack end to end on a checkpoint and an .npz video, and its errors."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run_cli as run
from vidattack import __version__

KEYS = {
    "method", "model", "video", "label", "clean_pred", "target", "success", "adv_label", "queries",
    "iterations", "seconds", "linf", "l2", "map", "frame_sparsity", "pixel_sparsity", "thickness", "roughness",
}


def test_version(capsys):
    assert run(["version"], capsys) == (0, f"{__version__}\n", "")


def test_attack_json_reports_every_field(assets, capsys):
    code, out, _ = run(["attack", "pgd", "--model", assets["model"], "--video", assets["video"], "--eps", "0.3",
                        "--json"], capsys)
    assert code == 0
    record = json.loads(out)
    assert KEYS <= set(record)
    assert record["label"] == int(assets["pred"]) and record["label_source"] == "prediction"
    assert record["success"] is True and record["adv_label"] != record["label"]
    assert record["linf"] <= 0.3 + 1e-6 and record["queries"] == 0
    assert isinstance(record["success_h264"], bool) and 0 <= record["clean_h264_pred"] < 5


def test_clean_misclassified_video_is_not_an_attack_success(assets, capsys):
    wrong = (int(assets["pred"]) + 1) % 5
    code, out, _ = run(["attack", "pgd", "--model", assets["model"], "--video", assets["video"], "--label",
                        str(wrong), "--json"], capsys)
    record = json.loads(out)
    assert code == 0 and record["status"] == "clean-misclassified" and record["success"] is False


def test_attack_out_writes_outputs_inside_the_directory(assets, capsys, tmp_path):
    out = tmp_path / "run"
    code, text, _ = run(["attack", "pgd", "--model", assets["model"], "--video", assets["video"], "--eps", "0.3",
                         "--out", str(out)], capsys)
    assert code == 0 and "wrote" in text
    names = {path.name for path in out.iterdir()}
    assert {"result.json", "adversarial.mkv", "adversarial.npz", "preview.mp4", "grid.png", "trace.png"} <= names
    assert json.loads((out / "result.json").read_text())["method"] == "pgd"
    assert {path.name for path in tmp_path.iterdir()} == {"run"}


def test_black_box_attack_within_its_budget_and_quiet_without_progress(assets, capsys):
    code, out, err = run(["attack", "vsquare", "--model", assets["model"], "--video", assets["video"], "-q", "30",
                          "--eps", "0.001", "--no-progress", "--json"], capsys)
    record = json.loads(out)
    assert code == 0 and 0 < record["queries"] <= 30 and err == ""


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["attack", "warp", "--model", "{model}", "--video", "{video}"], "unknown attack method 'warp'"),
        (["attack", "pgd", "--model", "{model}", "--video", "/nonexistent/clip.mp4"], "clip.mp4"),
        (["attack", "pgd", "--model", "{model}", "--video", "{video}", "--target", "7"], "target"),
        (["attack", "pgd", "--model", "/nonexistent/model", "--video", "{video}"], "model"),
        (["attack", "pgd", "--model", "{model}", "--video", "{video}", "-p", "nosuch=1"], "nosuch"),
    ],
)
def test_errors_are_one_line_without_traceback(assets, capsys, args, needle):
    code, _, err = run([arg.format(**assets) for arg in args], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]
    assert "Traceback" not in err


def test_attacks_lists_methods_and_parameters(capsys):
    code, out, _ = run(["attacks"], capsys)
    assert code == 0 and "pgd" in out and "white-box" in out
    code, out, _ = run(["attacks", "pgd"], capsys)
    assert code == 0 and "--param steps = 50" in out


def test_bare_pt_weights_load_with_arch(assets, capsys, tmp_path):
    # A foreign state dict (torch.save of the network alone) needs its architecture: `--arch`.
    from vidattack import models

    net = models.build("lrcn", num_classes=5, width=0.25, dropout=0.0, num_frames=4, input_size=(16, 16), seed=0)
    torch.save(net.net.state_dict(), tmp_path / "weights.pt")
    args = ["attack", "pgd", "--model", str(tmp_path / "weights.pt"), "--video", assets["video"], "--label", assets["pred"],
            "-p", "steps=2", "--json"]  # fmt: skip
    code, _, err = run(args, capsys)
    assert code == 2 and "--arch" in err
    code, _, err = run(args[:4] + ["--arch", "lrcn"] + args[4:], capsys)
    assert code == 2 and "do not fit" in err  # the default LRCN is wider, with 101 classes
    kwargs = ["--arch-param", "num_classes=5", "--arch-param", "width=0.25", "--arch-param", "dropout=0"]
    code, out, err = run(args[:4] + ["--arch", "lrcn", *kwargs] + args[4:], capsys)
    assert code == 0, err
    assert json.loads(out)["iterations"] >= 1


def test_minimising_method_refuses_eps_and_non_zoo_model_asks_for_attacker_data(assets, capsys):
    base = ["attack", "opt", "--model", assets["model"], "--video", assets["video"], "--max-queries", "50"]
    code, _, err = run(base + ["--eps", "0.05"], capsys)
    assert code == 2 and "minimising" in err and "map_target" in err
    code, _, err = run(base, capsys)
    assert code == 2 and "--attacker-data" in err


def test_out_is_checked_before_any_work_and_outputs_share_one_mode(assets, capsys, tmp_path):
    import os

    existing = tmp_path / "file.txt"
    existing.write_text("x")
    # The video does not exist: the --out error must come first, before anything is loaded.
    code, _, err = run(["attack", "pgd", "--model", assets["model"], "--video", str(tmp_path / "absent.npz"),
                        "--out", str(existing)], capsys)
    assert code == 2 and err.startswith("error: --out") and "file.txt" in err and existing.read_text() == "x"
    out = tmp_path / "run"
    code, _, err = run(["attack", "pgd", "--model", assets["model"], "--video", assets["video"], "--eps", "0.3",
                        "--out", str(out)], capsys)
    assert code == 0, err
    modes = {path.name: os.stat(path).st_mode & 0o777 for path in out.iterdir()}
    assert "adversarial.npz" in modes and len(set(modes.values())) == 1, modes
