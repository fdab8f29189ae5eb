"""`vidattack evaluate`: the worst case over a suite, the result schema, resuming, and the command line.

Most tests run a suite of stub members on a stub model: the model reads a clip's class from one pixel,
and each stub member "succeeds" on a known list of clips (read from another pixel), so the expected
figures are known exactly.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import torch
from torch import nn

from vidattack.cli import main
from vidattack.evaluation.robustness import budget_grid, evaluate, load_schema, worst_case
from vidattack.evaluation.suites import SUITES, Member, Suite
from vidattack.methods.catalog import METHODS
from vidattack.methods.spec import MethodSpec
from vidattack.result import AttackResult

CLASSES = 3
EPS = 0.1


class ReadsPixel(nn.Module):
    """Predicts the class written (as class / 10) into pixel [t=0, c=0, 0, 0]; counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        value = x[:, 0, 0, 0, 0] * 10
        return -((value[:, None] - torch.arange(CLASSES, dtype=x.dtype)[None]) ** 2)


def make_clips(n: int = 8, misclassified: tuple[int, ...] = (5,)) -> tuple[torch.Tensor, torch.Tensor]:
    """Clip ``i`` has id ``i`` (pixel [0, 1, 0, 0] = i / 100) and label ``i % 3``; the clips in
    ``misclassified`` show the next class to the model."""
    videos = torch.full((n, 4, 3, 16, 16), 0.5)
    labels = torch.arange(n) % CLASSES
    for i in range(n):
        shown = (int(labels[i]) + (i in misclassified)) % CLASSES
        videos[i, 0, 0, 0, 0] = shown / 10
        videos[i, 0, 1, 0, 0] = i / 100
    return videos, labels


CALLS: list[tuple[str, int]] = []


def stub_attack(oracle, videos, label, *, target=None, eps: float = 0.05, breaks: str = "", cost: int = 1,
                overshoot: bool = False, tag: str = "", generator=None) -> AttackResult:  # fmt: skip
    """Succeeds on the clips whose id is in ``breaks`` after ``cost`` queries (fails after ``cost`` too);
    ``overshoot`` returns a success outside the eps ball."""
    ids = [round(float(v[0, 1, 0, 0]) * 100) for v in videos]
    CALLS.extend((tag, i) for i in ids)
    wanted = {int(x) for x in breaks.split(",") if x}
    for i, video in enumerate(videos):
        oracle.query(video.unsqueeze(0).expand(cost, -1, -1, -1, -1), owner=i)
    success = torch.tensor([i in wanted for i in ids])
    adversarial = videos.clone()
    adversarial[success, 1:, 2, 4:8, 4:8] += (3 if overshoot else 1) * eps * 0.999
    label = torch.as_tensor(label).reshape(-1)
    return AttackResult(
        adversarial=adversarial.clamp(0, 1), success=success,
        queries=torch.tensor([oracle.used(i) for i in range(len(videos))]),
        iterations=torch.ones(len(videos), dtype=torch.long), label=label, target=None,
        adv_label=torch.where(success, (label + 1) % CLASSES, label), seconds=0.0,
        extras=[{"stop_reason": "success" if ok else "budget"} for ok in success.tolist()],
    )  # fmt: skip


@pytest.fixture
def stub_method(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(METHODS, "stub", MethodSpec("stub", "scores", "bounded", "test stub", stub_attack))
    CALLS.clear()


def stub_suite() -> Suite:
    # a: clips 0, 3 (and 5, misclassified: never attacked); b: 1, 3; c: clip 6 but outside eps; d: 6 within.
    return Suite("scores", "test", (
        Member("a", "stub", lambda eps: {"breaks": "0,3,5", "cost": 3, "tag": "a"}),
        Member("b", "stub", lambda eps: {"breaks": "1,3", "cost": 5, "tag": "b"}),
        Member("c", "stub", lambda eps: {"breaks": "6", "cost": 2, "overshoot": True, "tag": "c"}),
        Member("d", "stub", lambda eps: {"breaks": "6", "cost": 1, "tag": "d"}),
    ))  # fmt: skip


def run_stub(out: Path, **kwargs) -> dict:
    kwargs.setdefault("reports", False)
    return evaluate(ReadsPixel(), make_clips(), "scores", out=out, eps=EPS, budget=1000, n=8, suite=stub_suite(),
                    progress=False, **kwargs)  # fmt: skip


def by_clip(document: dict) -> dict[int, dict]:
    return {sample["clip"]: sample for sample in document["samples"]}


@pytest.mark.parametrize("stop", [True, False])
def test_robust_accuracy_is_the_share_no_member_broke_and_at_most_every_members(tmp_path, stub_method, stop):
    document = run_stub(tmp_path / "out", stop_at_first_success=stop, reports=stop)
    # correct clips: all but 5; broken at eps: 0, 3 (a), 1 (b), 6 (d: c's success on 6 is outside eps, so
    # the suite goes on to d)
    assert document["clean_acc"] == pytest.approx(7 / 8)
    assert document["robust_acc"] == pytest.approx(3 / 8)
    samples = by_clip(document)
    assert {c: s["broken_by"] for c, s in samples.items()} == {
        0: "a", 1: "b", 2: None, 3: "a", 4: None, 5: "clean", 6: "d", 7: None}
    members = {m["member"]: m for m in document["members"]}
    assert [members[k]["robust_acc_after"] for k in "abcd"] == pytest.approx([5 / 8, 4 / 8, 4 / 8, 3 / 8])
    if stop:
        # each member attacks only what the earlier ones left: b never sees 0 or 3, c never sees 1
        assert [members[k]["attacked"] for k in "abcd"] == [7, 5, 4, 4]
        assert ("b", 0) not in CALLS and ("c", 1) not in CALLS and ("a", 5) not in CALLS
    else:
        alone = [members[k]["robust_acc_alone"] for k in "abcd"]
        assert alone == pytest.approx([5 / 8, 5 / 8, 7 / 8, 6 / 8])
        assert all(document["robust_acc"] <= value for value in alone)
    # clip 1: a spent its 3 queries, b succeeded after 5 -> broken at 8 cumulative queries
    assert samples[1]["queries"] == 8 and samples[0]["queries"] == 3 and samples[5]["queries"] == 0
    c_on_6 = samples[6]["attempts"][2]
    assert c_on_6["member"] == "c" and c_on_6["success"] and not c_on_6["success_at_eps"]
    assert samples[6]["queries"] == 3 + 5 + 2 + 1
    jsonschema.validate(document, load_schema())
    assert json.loads((tmp_path / "out" / "robustness.json").read_text()) == document
    if stop:  # black-box: both plots, inline
        assert (tmp_path / "out" / "report.html").read_text().count("data:image/png;base64,") == 2


def test_budgets_count_the_queries_of_earlier_members() -> None:
    def sample(*attempts: tuple[str, bool, int]) -> dict:
        return {"correct": True, "attempts": [
            {"member": m, "success_at_eps": ok, "success_uint8": ok, "success_h264": False, "queries": q}
            for m, ok, q in attempts]}  # fmt: skip

    samples = [
        sample(("a", True, 900)),                      # broken at 900
        sample(("a", False, 1000), ("b", True, 500)),  # broken at 1500: not within 1000
        sample(("a", False, 1000), ("b", False, 1000)),  # robust
        {"correct": False, "attempts": []},            # misclassified: broken at 0
    ]  # fmt: skip
    figures = worst_case(samples, ["a", "b"], [500, 1000, 3000])
    assert [b["robust_acc"] for b in figures["budgets"]] == pytest.approx([3 / 4, 2 / 4, 1 / 4])
    assert figures["robust_acc"] == pytest.approx(1 / 4)
    assert figures["robust_acc_h264"] == pytest.approx(3 / 4)  # only the misclassified clip
    assert budget_grid(10_000) == [1000, 3000, 10_000]
    assert budget_grid(50_000) == [1000, 3000, 10_000, 30_000, 50_000]
    assert budget_grid(None) == []


def _comparable(document: dict) -> dict:
    document = copy.deepcopy(document)
    for key in ("created", "wall_seconds", "attack_seconds"):
        document.pop(key)
    for sample in document["samples"]:
        for attempt in sample["attempts"]:
            attempt.pop("seconds")
    return document


def test_an_interrupted_evaluation_resumes_to_the_uninterrupted_result(tmp_path, stub_method) -> None:
    reference = run_stub(tmp_path / "whole", stop_at_first_success=False)
    calls_whole = len(CALLS)
    CALLS.clear()

    finished: list[int] = []

    def die_after_three(sample: dict) -> None:
        finished.append(sample["clip"])
        if len(finished) == 3:
            raise KeyboardInterrupt("killed")

    with pytest.raises(KeyboardInterrupt):
        run_stub(tmp_path / "resumed", stop_at_first_success=False, on_clip=die_after_three)
    assert not (tmp_path / "resumed" / "robustness.json").exists()
    first_part = len(CALLS)
    CALLS.clear()
    resumed = run_stub(tmp_path / "resumed", stop_at_first_success=False)
    assert _comparable(resumed) == _comparable(reference)
    # nothing done before the interruption ran again
    assert first_part + len(CALLS) == calls_whole
    assert not {(tag, clip) for tag, clip in CALLS} & {(tag, clip) for tag in "abcd" for clip in finished}
    # the same folder refuses other settings instead of mixing results
    with pytest.raises(ValueError, match="other settings"):
        evaluate(ReadsPixel(), make_clips(), "scores", out=tmp_path / "resumed", eps=EPS / 2, budget=1000, n=8,
                 suite=stub_suite(), progress=False, reports=False, stop_at_first_success=False)  # fmt: skip


def test_members_that_need_attacker_data_fail_before_any_query(tmp_path) -> None:
    model = ReadsPixel()
    with pytest.raises(ValueError, match="--attacker-data"):
        evaluate(model, make_clips(), "labels", out=tmp_path / "out", n=4, progress=False)
    assert model.calls == 0


def test_bad_arguments_are_refused(tmp_path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="--out"):
        evaluate(ReadsPixel(), make_clips(), "white-box", out=tmp_path / "file", n=2, progress=False)
    with pytest.raises(ValueError, match="--threat"):
        evaluate(ReadsPixel(), make_clips(), "grey-box", out=tmp_path / "o", n=2, progress=False)
    remote_like = ReadsPixel()
    remote_like.black_box_only = True
    with pytest.raises(ValueError, match="white-box"):
        evaluate(remote_like, make_clips(), "white-box", out=tmp_path / "o", n=2, progress=False)
    with pytest.raises(ValueError, match="unknown model"):
        evaluate("no-such-model", make_clips(), "white-box", out=tmp_path / "o", n=2, progress=False)
    with pytest.raises(ValueError, match="--data: no such folder"):
        evaluate(ReadsPixel(), str(tmp_path / "absent"), "white-box", out=tmp_path / "o", n=2, progress=False)
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_every_suite_member_is_a_registered_method_of_its_threat() -> None:
    from vidattack import methods

    for threat, suite in SUITES.items():
        assert suite.threat == threat and suite.members
        for member in suite.members:
            spec = methods.get(member.method)
            params = dict(member.params(0.05))
            assert set(params) <= set(methods.parameters(member.method)), member.label
            # white-box suites use white-box methods; black-box suites never do
            assert (spec.threat == "white-box") == (threat == "white-box"), member.label
            if threat == "labels":  # label-only: Heuristic without its score-based frame selection
                assert params.get("temporal") is False or spec.threat == "labels", member.label


def test_cli_evaluates_a_zoo_model_into_a_valid_report(tmp_path, capsys) -> None:
    out = tmp_path / "eval"
    main(["evaluate", "--model", "c3d-synth", "--data", "synth", "--threat", "white-box", "--n", "2",
          "--out", str(out), "--no-progress"])  # fmt: skip
    printed = capsys.readouterr().out
    assert "robust accuracy" in printed and "clean accuracy" in printed
    document = json.loads((out / "robustness.json").read_text())
    jsonschema.validate(document, load_schema())
    assert document["n"] == 2 and document["suite"]["name"] == "vidattack-white-box"
    assert document["data"]["labels"] == "the test bed's classes"
    assert document["budget"] is None and document["budgets"] == []
    html = (out / "report.html").read_text()
    assert html.count("<img") == 1 and "data:image/png;base64," in html
    assert (out / "report.md").read_text().startswith("# Robustness of c3d-synth")
    assert (out / "evaluate.sqlite").is_file()
