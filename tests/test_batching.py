"""The batching executor: merged forward passes, exact per-video counting, results identical to a
sequential run, and failures that never hang the other jobs."""

from __future__ import annotations

import os
import threading
import time

import pytest
import torch

from vidattack import methods
from vidattack import models as zoo
from vidattack.batching import BatchCancelled, BatchingProxy, PaddedModel, run_batched
from vidattack.data.synthetic import SynthConfig, generate
from vidattack.methods import SyntheticAttackerData


def run_method(*args, **kwargs):
    """``methods.run`` with the zoo's attacker data (the test bed's training split)."""
    return methods.run(*args, attacker_data=SyntheticAttackerData(), **kwargs)

MAX_BATCH = 8


@pytest.fixture(scope="module")
def c3d() -> torch.nn.Module:
    return zoo.load("c3d-synth").eval()


@pytest.fixture(scope="module")
def clips():
    return generate("test", SynthConfig(), indices=[0, 1, 3])


def _jobs(name: str, clips, budget: int, params: dict | None = None):
    def make(i: int):
        video, label = clips.videos[i : i + 1], clips.labels[i : i + 1]
        return lambda model: run_method(name, model, video, label, budget=budget, seed=10 + i, params=params)

    return [make(i) for i in range(len(clips.labels))]


def _with_deadline(fn, seconds: float = 60.0):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it does not return in time."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"batched run did not finish within {seconds} s (deadlock?)"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]


def _assert_same(a, b) -> None:
    assert torch.equal(a.adversarial, b.adversarial)
    assert torch.equal(a.success, b.success)
    assert torch.equal(a.queries, b.queries)
    assert torch.equal(a.adv_label, b.adv_label)
    assert a.trace == b.trace


class Counting(torch.nn.Module):
    """Counts the forward passes of the model it wraps."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.model(videos)


@pytest.mark.parametrize("name,budget,pad", [("vbad", 200, True), ("opt", 200, True), ("opt", 200, "probe"),
                                             ("vsquare", 200, "probe")])
def test_batched_equals_sequential_bit_for_bit(c3d, clips, name, budget, pad):
    jobs = _jobs(name, clips, budget)
    counted = Counting(c3d)
    sequential = [job(PaddedModel(counted, MAX_BATCH)) for job in jobs]
    proxy = BatchingProxy(c3d, max_batch=MAX_BATCH, pad=pad)
    batched = _with_deadline(lambda: run_batched(jobs, c3d, proxy=proxy))
    for seq, bat in zip(sequential, batched, strict=True):
        _assert_same(seq, bat)
        assert 0 < int(bat.queries[0]) <= budget
    # The calls really were merged: fewer passes than the one-video-at-a-time run needed ...
    assert proxy.stats.forwards < counted.calls
    if pad is True:
        assert set(proxy.stats.batch_sizes) == {MAX_BATCH}
    else:  # every pass has one of the sizes the probe found identical to MAX_BATCH
        (sizes,) = proxy.stats.pass_sizes.values()
        assert set(proxy.stats.batch_sizes) <= set(sizes) and MAX_BATCH in sizes
    # ... and counting is exact: every row the model evaluated is a query some video was charged for.
    assert proxy.stats.rows == sum(int(r.queries.sum()) for r in batched)


class SmallBatchesDiffer(torch.nn.Module):
    """A model whose logits change (slightly) in passes of fewer than 4 rows, as CPU kernels can."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        logits = self.model(videos)
        return logits + 1e-3 if videos.shape[0] < 4 else logits


def test_probed_padding_pads_short_passes_only_to_an_identical_size(toy_model):
    from tests.conftest import make_toy_videos

    model = SmallBatchesDiffer(toy_model).eval()
    videos, labels = make_toy_videos(3, seed=5)
    jobs = [
        (lambda m, i=i: run_method("vsquare", m, videos[i : i + 1], labels[i : i + 1], budget=120, seed=i))
        for i in range(3)
    ]
    reference = [job(PaddedModel(model, 16)) for job in jobs]
    fixed = BatchingProxy(model, max_batch=16, pad=True)
    probed = BatchingProxy(model, max_batch=16, pad="probe")
    for proxy in (fixed, probed):
        for a, b in zip(reference, run_batched(jobs, model, proxy=proxy), strict=True):
            _assert_same(a, b)
    # sizes 1 and 2 differ from a pass of 16, 4 and 8 agree: a short pass is padded to 4 or 8 rows
    (sizes,) = probed.stats.pass_sizes.values()
    assert min(sizes) >= 4 and 16 in sizes and set(probed.stats.batch_sizes) <= set(sizes)
    assert probed.stats.padded_rows < fixed.stats.padded_rows
    assert probed.stats.rows == fixed.stats.rows
    # three one-row requests: sizes 1 and 2 are probed and refused, the round runs as one pass of 4
    singles = BatchingProxy(model, max_batch=16, pad="probe")
    rows = run_batched([(lambda m, i=i: m(videos[i : i + 1])) for i in range(3)], model, proxy=singles)
    assert singles.stats.batch_sizes == [4] and singles.stats.pass_sizes == {tuple(videos.shape[1:]): [4, 16]}
    with torch.inference_mode():
        expected = PaddedModel(model, 16)(videos)
    assert torch.equal(torch.cat(rows), expected)


def test_pad_must_be_a_known_policy(toy_model):
    with pytest.raises(ValueError, match="pad"):
        BatchingProxy(toy_model, pad="smallest")


def test_concurrency_one_is_the_sequential_reference(c3d, clips):
    jobs = _jobs("srbad", clips, 150, {"patches": 4})
    one = run_batched(jobs, c3d, max_batch=MAX_BATCH, concurrency=1)
    all_at_once = run_batched(jobs, c3d, max_batch=MAX_BATCH)
    free_threads = run_batched(jobs, c3d, max_batch=MAX_BATCH, cooperative=False, concurrency=2)
    overlapped = run_batched(jobs, c3d, max_batch=MAX_BATCH, overlap=True)  # passes in a device thread
    for a, b, c, d in zip(one, all_at_once, free_threads, overlapped, strict=True):
        _assert_same(a, b)
        _assert_same(a, c)
        _assert_same(a, d)


class RowByRow(torch.nn.Module):
    """A model whose rows are computed one at a time: batch-size invariant by construction."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.model(videos[i : i + 1]) for i in range(videos.shape[0])])


def test_unpadded_batching_equals_plain_sequential_for_a_batch_invariant_model(toy_model):
    from tests.conftest import make_toy_videos

    model = RowByRow(toy_model).eval()
    videos, labels = make_toy_videos(3, seed=5)
    jobs = [
        (lambda m, i=i: run_method("srbad", m, videos[i : i + 1], labels[i : i + 1], budget=150, seed=i,
                                     params={"patches": 4}))
        for i in range(3)
    ]
    plain = [job(model) for job in jobs]
    batched = run_batched(jobs, model, max_batch=64, pad=False)
    for a, b in zip(plain, batched, strict=True):
        _assert_same(a, b)


class Scripted:
    """A model-free job: a few model calls on fixed inputs, optionally failing at one of them."""

    def __init__(self, index: int, calls: int = 4, fail_at: int | None = None, poison: bool = False) -> None:
        self.index, self.calls, self.fail_at, self.poison = index, calls, fail_at, poison

    def __call__(self, model):
        outputs = []
        for call in range(self.calls):
            if call == self.fail_at and not self.poison:
                raise KeyError(f"job {self.index} broke")
            rows = torch.full((2 + self.index, 3), float(self.index + call))
            if call == self.fail_at and self.poison:
                rows[0, 0] = float("nan")
            outputs.append(model(rows))
        return torch.cat(outputs)


def sum_model(rows: torch.Tensor) -> torch.Tensor:
    if torch.isnan(rows).any():
        raise ValueError("NaN input")
    return torch.stack([rows.sum(dim=1), -rows.sum(dim=1)], dim=1)


def test_results_follow_job_order_and_each_job_gets_its_own_rows():
    jobs = [Scripted(i) for i in range(5)]
    results = run_batched(jobs, sum_model, max_batch=4)
    for job, result in zip(jobs, results, strict=True):
        assert torch.equal(result, job(sum_model))


def test_on_result_reports_each_job_as_it_finishes():
    seen: dict[int, object] = {}
    jobs = [Scripted(0, calls=6), Scripted(1, calls=3, fail_at=2), Scripted(2, calls=1)]
    results = run_batched(jobs, sum_model, return_exceptions=True, on_result=seen.__setitem__)
    assert list(seen) == [2, 1, 0]  # the shortest job finished first
    assert all(seen[i] is results[i] for i in range(3))
    assert isinstance(seen[1], KeyError)


def test_a_failing_job_is_raised_without_hanging_the_others():
    jobs = [Scripted(0), Scripted(1, fail_at=2), Scripted(2, calls=50)]
    start = time.perf_counter()
    with pytest.raises(KeyError, match="job 1 broke"):
        _with_deadline(lambda: run_batched(jobs, sum_model, max_batch=4), seconds=30)
    assert time.perf_counter() - start < 30


def test_return_exceptions_lets_the_other_jobs_finish():
    jobs = [Scripted(0), Scripted(1, fail_at=1), Scripted(2)]
    results = _with_deadline(lambda: run_batched(jobs, sum_model, return_exceptions=True), seconds=30)
    assert isinstance(results[1], KeyError)
    assert torch.equal(results[0], jobs[0](sum_model))
    assert torch.equal(results[2], jobs[2](sum_model))


@pytest.mark.parametrize("overlap", [True, False])
def test_a_request_that_breaks_the_merged_pass_fails_only_its_own_job(overlap):
    jobs = [Scripted(0), Scripted(1, fail_at=1, poison=True), Scripted(2)]
    results = _with_deadline(
        lambda: run_batched(jobs, sum_model, pad=False, overlap=overlap, return_exceptions=True)
    )
    assert isinstance(results[1], ValueError)
    assert torch.equal(results[0], jobs[0](sum_model))
    assert torch.equal(results[2], jobs[2](sum_model))


def test_cancelled_jobs_see_batch_cancelled():
    seen: list[BaseException] = []

    def patient(model):
        try:
            for _ in range(100):
                model(torch.ones(1, 3))
        except BatchCancelled as error:
            seen.append(error)
            raise
        return "finished"

    with pytest.raises(KeyError):
        _with_deadline(lambda: run_batched([patient, Scripted(1, fail_at=1)], sum_model), seconds=30)
    assert len(seen) == 1


def test_cooperative_jobs_never_run_their_own_code_at_the_same_time():
    running, most = [0], [0]
    lock = threading.Lock()

    def job(model):
        for _ in range(5):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.002)  # give another thread the chance to overlap, if it could
            with lock:
                running[0] -= 1
            model(torch.ones(1, 3))
        return True

    assert run_batched([job] * 4, sum_model) == [True] * 4
    assert most[0] == 1


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="max_batch"):
        run_batched([Scripted(0)], sum_model, max_batch=0)
    with pytest.raises(ValueError, match="jobs\\[1\\]"):
        run_batched([Scripted(0), "not a job"], sum_model)
    with pytest.raises(ValueError, match="concurrency"):
        run_batched([Scripted(0)], sum_model, concurrency=0)
    with pytest.raises(ValueError, match="batch"):
        PaddedModel(sum_model, 0)
    assert run_batched([], sum_model) == []


def test_overlap_by_default_only_where_a_core_is_left_beside_the_forward_pass(monkeypatch):
    from vidattack import batching

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    model = torch.nn.Linear(3, 2)
    monkeypatch.setattr(torch, "get_num_threads", lambda: cores)
    assert BatchingProxy(model).overlap is False  # every core busy in the forward pass: in line
    assert BatchingProxy(model, overlap=True).overlap is True  # an explicit choice wins
    monkeypatch.setattr(torch, "get_num_threads", lambda: cores - 1)
    assert BatchingProxy(model).overlap is (cores > 1)
    assert batching._spare_compute(torch.device("cuda")) is True
    assert batching._spare_compute(torch.device("meta")) is False
