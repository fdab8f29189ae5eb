"""Stopping a running attack early (Ctrl-C) keeps what it found: oracles, every black-box method, the CLI."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from conftest import run_cli as run
from vidattack import methods, models
from vidattack.cli.stopping import first_interrupt_stops
from vidattack.data.synthetic import generate
from vidattack.forward_count import counting_clips
from vidattack.methods.spec import bound_used
from vidattack.threat import LabelOracle, QueryBudgetExceeded, ScoreOracle, StopRequested, graceful_stop

BLACK_BOX = [name for name in methods.names() if methods.get(name).threat != "white-box"]
STOP_AFTER = 40  # clips through the model before the stop is requested


def test_oracles_answer_nothing_once_stopped():
    seen = []

    def model(x):
        seen.append(x.shape[0])
        return torch.zeros(x.shape[0], 3)

    clips = torch.rand(4, 2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    outside = ScoreOracle(model, budget=100)
    with graceful_stop() as stop:
        scores, labels = ScoreOracle(model, budget=100), LabelOracle(model)
        scores.query(clips)
        stop.set()
        assert scores.stopped and scores.remaining() == 0 and labels.remaining() == 0
        for oracle in (scores, labels):
            with pytest.raises(StopRequested, match="stop requested: video 0 ends after"):
                oracle.query(clips)
        assert issubclass(StopRequested, QueryBudgetExceeded)  # attacks end as at the end of a budget
        assert scores.queries == 4 and sum(seen) == 4  # the model never ran for the refused calls
        outside.query(clips)  # an oracle made outside the block is not affected
    assert not outside.stopped and outside.remaining() == 96


@pytest.fixture(scope="module")
def victim() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    net = models.load("lrcn-synth").eval()
    clips = generate("test", indices=range(12))
    with torch.no_grad():
        correct = (net(clips.videos).argmax(1) == clips.labels).nonzero().flatten()
    index = int(correct[0])
    return net, clips.videos[index : index + 1], clips.labels[index : index + 1]


@pytest.mark.parametrize("name", BLACK_BOX)
def test_every_black_box_method_ends_normally_when_stopped(victim, name):
    net, video, label = victim
    seen = [0]
    with graceful_stop() as stop:

        def on_clips(count: int) -> None:
            seen[0] += count
            if seen[0] >= STOP_AFTER:
                stop.set()

        with counting_clips(net, on_clips) as counted:
            result = methods.run(name, counted, video, label, budget=5_000, seed=0,
                                 attacker_data=methods.SyntheticAttackerData())  # fmt: skip
    # it returned a result instead of raising, within the queries answered before the stop
    assert int(result.queries[0]) == seen[0] and seen[0] < 5_000
    adversarial = result.adversarial
    assert adversarial.shape == video.shape and bool(((adversarial >= 0) & (adversarial <= 1)).all())
    eps = bound_used(methods.get(name), None)
    if eps is not None:
        assert float((adversarial - video).abs().max()) <= eps + 1e-6


def test_first_ctrl_c_stops_the_second_aborts():
    with graceful_stop() as stop, first_interrupt_stops(stop):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)


def test_cli_attack_interrupted_keeps_its_result(assets, tmp_path, capsys, monkeypatch):
    from vidattack.methods import record

    attack_video = record.attack_video

    def interrupted_after_some_queries(*args, on_clips, **kwargs):
        seen = [0]

        def count(n: int) -> None:
            seen[0] += n
            on_clips(n)
            if seen[0] >= STOP_AFTER and seen[0] - n < STOP_AFTER:
                os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, once

        return attack_video(*args, on_clips=count, **kwargs)

    monkeypatch.setattr(record, "attack_video", interrupted_after_some_queries)
    code, out, error = run(["attack", "vsquare", "--model", assets["model"], "--video", assets["video"], "--eps",
                            "0.001", "-q", "100000", "--out", str(tmp_path / "out"), "--json"], capsys)  # fmt: skip
    assert code == 0 and "stopping: the attack ends with the best result it has" in error
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved["interrupted"] is True and STOP_AFTER <= saved["queries"] < 100_000
    assert json.loads(out)["queries"] == saved["queries"]


def test_cli_ctrl_c_elsewhere_exits_130(assets, capsys, monkeypatch):
    from vidattack.methods import record

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(record, "attack_video", interrupted)
    code, _, error = run(["attack", "pgd", "--model", assets["model"], "--video", assets["video"]], capsys)
    assert code == 130 and error.strip() == "interrupted"  # it used to exit 0 and print nothing
    from vidattack.evaluation import robustness

    monkeypatch.setattr(robustness, "evaluate", interrupted)
    code, _, error = run(["evaluate", "--model", assets["model"], "--data", "synth", "--threat", "scores",
                          "--out", "unused"], capsys)  # fmt: skip
    assert code == 130 and "re-run the same command to resume" in error
