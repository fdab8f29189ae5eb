"""Many attacks, one device: a dynamic batcher that merges the model calls of concurrent attack jobs.

A black-box attack on one video rarely fills a device: its NES population is tens of clips and its
reads and boundary searches are single clips. :func:`run_batched` runs K attack *jobs* (callables that
take a model and return a result, e.g. ``lambda m: methods.run("vbad", m, video, label, seed=s)``) in
K threads and hands each job its own handle on a shared :class:`BatchingProxy`. A job's oracle calls
the handle exactly as it would call the model; the handle blocks while the proxy merges the jobs'
requests into forward passes of up to ``max_batch`` rows, like a dynamic batcher, and gives each job
its own rows as soon as they are computed. Each job keeps its own oracle, so query counting and
budgets are unchanged.

Scheduling. By default (``cooperative=True``) the jobs' own code runs one job at a time, switching
only at model calls, so jobs never race on process-wide state (the global RNG that some initialisers
use under ``fork_rng``, caches); the device does the merged work.

Streaming. A forward pass is launched as soon as the pending requests fill one, and a job whose rows
are computed goes on at once, while the device works on the other jobs' rows; only when every live job
waits on rows short of a full pass is a short pass launched. With ``overlap=True`` the passes run in a
device thread, so the attacks' own work hides behind the model's and the device does not wait for the
slowest job of a round. The default (``overlap=None``) turns it on where something can run beside the
forward pass: a model on a CUDA device, or a CPU model when PyTorch uses fewer threads than the
process may run on (a core is left for the attacks). Measured on 2 cores with one PyTorch thread:
benchmarks/results_throughput.md. Which rows share a pass then depends on timing; with padding (below)
a row's logits do not depend on the rows it shares a pass with, so results do not depend on timing.

Bit-identical results. A forward pass's output for one row is not always independent of the batch
it was computed in: on CPU, PyTorch's convolution and matmul kernels pick different algorithms for
different batch sizes (measured 2026-12-06 on the zoo: c3d-synth gives logits that differ by up to
5e-6 between batch 1 and batch >= 4, r2plus1d-synth between batch < 16 and >= 16 with one thread;
the thresholds move with the thread count). Such a difference can flip a boundary decision and send
an attack down another path. What *was* exact in every measurement is that, for a fixed batch size,
a row's logits depend only on that row (not on its position or on the other rows). So with
``pad=True`` the proxy computes every row in a forward pass of exactly ``max_batch`` rows, padding a
short pass with zeros: a row's logits are then a function of the row alone, whichever jobs share the
pass, and a run is bit-identical to running the same jobs one after another against
:class:`PaddedModel` ``(model, max_batch)`` (or through this executor with ``concurrency=1``).
Padding every short pass to ``max_batch`` rows wastes work when the requests are a few rows per video
(measured: 26% of the rows of a square-search campaign were padding), so ``pad="probe"`` (the default)
asks the model which smaller pass sizes give the *same* logits as a pass of ``max_batch``: one pass of
``max_batch`` random rows, and one of each candidate size (1, 2, 4, multiples of 8) the first time it
could serve, compared with ``torch.equal``. A short pass is then padded only to the smallest such
size. Kernel choice depends on shapes and threads, not on the values, so sizes that agree on the probe
agree on every input and the run stays bit-identical to the :class:`PaddedModel` reference (tested on
the zoo; c3d-synth with one thread agrees at every size >= 4). With ``pad=False`` the passes take the
rows as they come (no padding work), and results equal a plain sequential run only for models whose
kernels are batch-size invariant. On CUDA the guarantee also needs deterministic kernels
(``torch.backends.cudnn.deterministic = True``, ``benchmark = False``).

This module is threat-model agnostic: it only sees ``[N, ...]`` tensors in and logits ``[N, K]`` out,
and it never counts queries (the jobs' oracles do).
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import torch
from torch import Tensor, nn

__all__ = ["BatchCancelled", "BatchStats", "BatchingProxy", "PadPolicy", "PaddedModel", "run_batched"]

Model = Callable[[Tensor], Tensor]
R = TypeVar("R")
#: How short forward passes are padded: ``True`` to exactly ``max_batch`` rows, ``"probe"`` to the smallest
#: size the model computes identically (see the module docstring), ``False`` not at all.
PadPolicy = bool | Literal["probe"]


def _candidate_sizes(max_batch: int) -> list[int]:
    """Pass sizes ``pad="probe"`` may pad to: 1, 2, 4, multiples of 8 below ``max_batch``, ``max_batch``."""
    sizes = [s for s in (1, 2, 4) if s < max_batch] + list(range(8, max_batch, 8))
    return [*sizes, max_batch]


class BatchCancelled(RuntimeError):
    """Raised inside a job's model call after another job failed and the run is being cancelled."""


def _model_device(model: Model) -> torch.device | None:
    if isinstance(model, nn.Module):
        for tensor in model.parameters():
            return tensor.device
        for tensor in model.buffers():
            return tensor.device
    return None


def _spare_compute(device: torch.device | None) -> bool:
    """Whether a forward pass on ``device`` leaves compute for the attacks' own work beside it.

    A CUDA model runs on the device; a CPU model (``device`` CPU or unknown) leaves a core free when
    PyTorch's intra-op threads are fewer than the cores this process may use.
    """
    if device is not None and device.type == "cuda":
        return True
    if device is not None and device.type != "cpu":
        return False
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return torch.get_num_threads() < cores


def _check_batch_size(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _forward_padded(model: Model, rows: Tensor, batch: int, device: torch.device | None) -> Tensor:
    """Logits of ``rows`` computed in forward passes of exactly ``batch`` rows (zero-padded)."""
    outputs = []
    for start in range(0, rows.shape[0], batch):
        chunk = rows[start : start + batch]
        real = chunk.shape[0]
        if real < batch:
            chunk = torch.cat([chunk, chunk.new_zeros((batch - real, *chunk.shape[1:]))])
        if device is not None:
            chunk = chunk.to(device)
        outputs.append(_checked(model(chunk), batch)[:real])
    return torch.cat(outputs)


def _checked(logits: object, n: int) -> Tensor:
    if not isinstance(logits, Tensor) or logits.dim() < 1 or logits.shape[0] != n:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"model must return one row of logits per input row ({n}), got {shape}")
    return logits


#: What a wrapped model declares about itself (class count, names, input shape), passed through so that
#: threat models validate inputs and labels against the real model without an extra forward.
_DECLARED = ("num_classes", "class_names", "input_spec", "num_frames", "input_size")


def _declared(model: Any, name: str) -> Any:
    if name not in _DECLARED:
        raise AttributeError(name)
    return getattr(model, name)


class PaddedModel:
    """``model`` evaluated in forward passes of exactly ``batch`` rows (the last one zero-padded).

    The sequential reference of :func:`run_batched` with ``pad=True``: attacks run one after another
    against ``PaddedModel(model, max_batch)`` give bit-identical results to the batched run, because
    every row is computed in a pass of the same shape either way. ``black_box_only`` is set: the
    forward runs without autograd.

    Args:
        model: callable ``[N, ...] -> logits [N, K]``; an ``nn.Module`` is put in eval mode.
        batch: rows per forward pass (>= 1).
    """

    black_box_only = True

    def __init__(self, model: Model, batch: int) -> None:
        if not callable(model):
            raise ValueError(f"model must be callable, got {model!r}")
        self.model = model.eval() if isinstance(model, nn.Module) else model
        self.batch = _check_batch_size(batch, "batch")
        self.device = _model_device(self.model)

    def __getattr__(self, name: str) -> Any:
        return _declared(self.__dict__["model"], name)

    def __call__(self, videos: Tensor) -> Tensor:
        """Logits ``[N, K]`` of ``videos [N, ...]`` (on the model's device)."""
        if not isinstance(videos, Tensor) or videos.dim() < 1 or videos.shape[0] == 0:
            raise ValueError(f"videos must be a non-empty [N, ...] tensor, got {videos!r:.80}")
        with torch.inference_mode():
            return _forward_padded(self.model, videos, self.batch, self.device).clone()


@dataclass
class BatchStats:
    """What the proxy did, for benchmarks.

    Attributes:
        rounds: times every live job waited on rows short of a full pass, so a short pass was launched.
        forwards: forward passes of the model.
        rows: real rows evaluated (the jobs' requests).
        padded_rows: zero rows added to fill fixed-shape passes (``pad=True`` or ``"probe"``).
        probe_rows: rows of the probe passes (``pad="probe"``, once per input shape).
        pass_sizes: per input shape, the pass sizes probed so far that compute rows identically to a
            pass of ``max_batch`` (``max_batch`` included).
        forward_seconds: wall time inside the model's forward passes (asynchronous on CUDA unless the
            model synchronises).
        batch_sizes: rows of each forward pass, in order.
    """

    rounds: int = 0
    forwards: int = 0
    rows: int = 0
    padded_rows: int = 0
    probe_rows: int = 0
    forward_seconds: float = 0.0
    batch_sizes: list[int] = field(default_factory=list)
    pass_sizes: dict[tuple[int, ...], list[int]] = field(default_factory=dict)

    @property
    def mean_batch(self) -> float:
        """Mean rows per forward pass (padding included)."""
        return (self.rows + self.padded_rows) / self.forwards if self.forwards else 0.0


@dataclass
class _Request:
    job: int
    videos: Tensor
    result: Tensor | None = None
    error: BaseException | None = None


@dataclass
class _Pass:
    """One launched forward pass: rows ``[start, end)`` of its group's stream, and their logits."""

    start: int
    end: int
    logits: Future[Tensor]


class _Group:
    """The stream of rows of one input shape: requests not answered yet, rows not launched yet, and the
    launched passes whose rows have not all been handed out."""

    def __init__(self) -> None:
        self.waiting: deque[tuple[_Request, int, int]] = deque()  # (request, first row, end) in the stream
        self.pending: list[Tensor] = []  # rows not launched yet, in request order
        self.pending_rows = 0
        self.added = 0  # rows added to the stream so far
        self.launched = 0  # rows launched so far
        self.passes: deque[_Pass] = deque()


class BatchingProxy:
    """The shared model of a batched run: collects the jobs' requests and runs merged forward passes.

    Jobs do not call the proxy directly; each gets a handle (:meth:`handle`) that submits its request
    and blocks until its rows have been computed. The scheduling itself lives in
    :func:`run_batched`; the proxy holds the merging, the forward passes and the statistics.

    Args:
        model: callable ``[N, ...] -> logits [N, K]`` (a video classifier); an ``nn.Module`` is put in
            eval mode. Inputs are moved to its device; logits come back on that device.
        max_batch: most rows per forward pass (with ``pad=True``: exactly this many). On CPU the zoo
            models run fastest at 4-64 rows per pass; on a GPU use 128-256.
        pad: ``True``: compute every row in a pass of exactly ``max_batch`` rows; ``"probe"``: pad a
            short pass only to the smallest size that the model computes identically (found by a probe,
            see the module docstring; same results as ``True``, less padding work); ``False``: no
            padding (identical to a sequential run only for batch-size invariant models).
        overlap: run the passes in a device thread, overlapping the jobs' own work (same results);
            ``None``: for a model on a CUDA device, or on CPU when PyTorch leaves a core free.
    """

    def __init__(
        self, model: Model, *, max_batch: int = 32, pad: PadPolicy = "probe", overlap: bool | None = None
    ) -> None:
        if not callable(model):
            raise ValueError(f"model must be callable, got {model!r}")
        if pad not in (True, False, "probe"):
            raise ValueError(f"pad must be True, False or 'probe', got {pad!r}")
        self.model = model.eval() if isinstance(model, nn.Module) else model
        self.max_batch = _check_batch_size(max_batch, "max_batch")
        self.pad: PadPolicy = pad
        self.device = _model_device(self.model)
        self.overlap = _spare_compute(self.device) if overlap is None else bool(overlap)
        self.stats = BatchStats()
        self._groups: dict[tuple[Any, ...], _Group] = {}
        # pad="probe": per input shape, which pass sizes compute rows as a pass of max_batch does, and the
        # probe rows with their logits at max_batch
        self._probed: dict[tuple[int, ...], dict[int, bool]] = {}
        self._probe_rows: dict[tuple[int, ...], tuple[Tensor, Tensor]] = {}
        self._device_thread: ThreadPoolExecutor | None = None

    # ---- the merged computation (called by the scheduler thread only) -----------------------------

    def _add(self, request: _Request) -> None:
        videos = request.videos
        key = (tuple(videos.shape[1:]), videos.dtype, videos.device)
        group = self._groups.setdefault(key, _Group())
        n = videos.shape[0]
        group.waiting.append((request, group.added, group.added + n))
        group.added += n
        group.pending.append(videos)
        group.pending_rows += n
        self.stats.rows += n
        # A full pass's worth of rows runs now (overlapped: while the other jobs build their requests).
        if group.pending_rows >= self.max_batch:
            self._launch(group, full_only=True)

    def _launch(self, group: _Group, *, full_only: bool) -> None:
        count = group.pending_rows - group.pending_rows % self.max_batch if full_only else group.pending_rows
        if count <= 0:
            return
        rows = torch.cat(group.pending) if len(group.pending) > 1 else group.pending[0]
        # Only the remainder (< max_batch rows) is kept back, so each row is copied at most twice.
        group.pending = [rows[count:]] if count < rows.shape[0] else []
        group.pending_rows -= count
        group.passes.append(_Pass(group.launched, group.launched + count, self._on_device(self._forward, rows[:count])))
        group.launched += count

    def _on_device(self, fn: Callable[[Tensor], Tensor], rows: Tensor) -> Future[Tensor]:
        """``fn(rows)`` in the device thread (``overlap``; passes run in launch order) or right here."""
        if self.overlap:
            if self._device_thread is None:
                self._device_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batched-device")
            return self._device_thread.submit(fn, rows)
        done: Future[Tensor] = Future()
        try:
            done.set_result(fn(rows))
        except Exception as error:  # noqa: BLE001 - retried request by request when handed out
            done.set_exception(error)
        return done

    def _forward(self, rows: Tensor) -> Tensor:
        start = time.perf_counter()
        with torch.inference_mode():
            outputs = []
            for first in range(0, rows.shape[0], self.max_batch):
                chunk = rows[first : first + self.max_batch]
                if self.pad:
                    size = self._pass_size(chunk)
                    outputs.append(_forward_padded(self.model, chunk, size, self.device))
                    self.stats.padded_rows += size - chunk.shape[0]
                    self.stats.batch_sizes.append(size)
                else:
                    inputs = chunk if self.device is None else chunk.to(self.device)
                    outputs.append(_checked(self.model(inputs), chunk.shape[0]))
                    self.stats.batch_sizes.append(chunk.shape[0])
                self.stats.forwards += 1
            logits = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        self.stats.forward_seconds += time.perf_counter() - start
        return logits

    def _pass_size(self, chunk: Tensor) -> int:
        """Rows of the (padded) pass that computes ``chunk``: ``max_batch``, or with ``pad="probe"`` the
        smallest candidate size >= its rows that gives the same logits as a pass of ``max_batch``.

        Candidates are 1, 2, 4, then multiples of 8 up to ``max_batch``; each is probed the first time
        it could serve (one forward pass of that many probe rows), so a run pays only for the sizes it
        needs and pads a short pass by fewer than 8 rows where the model allows it.
        """
        n = chunk.shape[0]
        if self.pad is True or n >= self.max_batch:
            return self.max_batch
        shape = tuple(chunk.shape[1:])
        for size in _candidate_sizes(self.max_batch):
            if size >= n and self._same_as_full(chunk, shape, size):
                return size
        return self.max_batch

    def _same_as_full(self, chunk: Tensor, shape: tuple[int, ...], size: int) -> bool:
        """Whether a pass of ``size`` rows computes rows shaped like ``chunk``'s exactly as a pass of
        ``max_batch`` does, on random probe rows (found once per shape and size)."""
        if size == self.max_batch:
            return True
        known = self._probed.setdefault(shape, {})
        if size not in known:
            known[size] = self._probe(chunk, shape, size)
            self.stats.pass_sizes[shape] = sorted([*(s for s, same in known.items() if same), self.max_batch])
        return known[size]

    def _probe(self, chunk: Tensor, shape: tuple[int, ...], size: int) -> bool:
        if not chunk.dtype.is_floating_point:
            return False  # no value range to draw probe rows from: pad fully
        try:
            if shape not in self._probe_rows:
                generator = torch.Generator().manual_seed(0)
                rows = torch.rand((self.max_batch, *shape), generator=generator).to(chunk.dtype)
                rows = rows if self.device is None else rows.to(self.device)
                self._probe_rows[shape] = (rows, _checked(self.model(rows), self.max_batch))
                self.stats.probe_rows += self.max_batch
            rows, reference = self._probe_rows[shape]
            self.stats.probe_rows += size
            return torch.equal(_checked(self.model(rows[:size]), size), reference[:size])
        except Exception:  # noqa: BLE001 - a model that rejects the probe is padded fully, as with True
            return False

    def _answer(self) -> list[_Request]:
        """Hand out every request whose rows have all been computed; returns them (in stream order)."""
        answered = []
        for group in self._groups.values():
            while group.waiting:
                request, first, end = group.waiting[0]
                covering = [p for p in group.passes if p.start < end and p.end > first]
                if end > group.launched or not all(p.logits.done() for p in covering):
                    break
                group.waiting.popleft()
                try:
                    parts = [p.logits.result()[max(first, p.start) - p.start : min(end, p.end) - p.start]
                             for p in covering]
                    # A copy: a job must not see (or pin) the memory of the other jobs' rows.
                    request.result = (torch.cat(parts) if len(parts) > 1 else parts[0]).clone()
                except Exception:  # noqa: BLE001 - one request's rows broke a merged pass
                    # Evaluate this request alone, so that only the request that breaks the model fails.
                    try:
                        request.result = self._on_device(self._forward, request.videos).result().clone()
                    except Exception as error:  # noqa: BLE001 - handed to the job that sent it
                        request.error = error
                answered.append(request)
                next_first = group.waiting[0][1] if group.waiting else group.launched
                while group.passes and group.passes[0].end <= next_first:
                    group.passes.popleft()
        return answered

    def _in_flight(self) -> Future[Tensor] | None:
        """The first launched pass that has not finished, if any."""
        for group in self._groups.values():
            for launched in group.passes:
                if not launched.logits.done():
                    return launched.logits
        return None

    def _step(self) -> list[_Request]:
        """Called when no job can run: wait for the next pass, or launch the short passes left (every
        live job is then waiting on rows that are not launched). Returns the requests answered."""
        answered = self._answer()
        if answered:
            return answered
        running = self._in_flight()
        if running is not None:
            wait([running])
            return self._answer()
        if any(group.pending_rows for group in self._groups.values()):
            self.stats.rounds += 1
            for group in self._groups.values():
                self._launch(group, full_only=False)
        return self._answer()

    def _close(self) -> None:
        if self._device_thread is not None:
            self._device_thread.shutdown(wait=True)
            self._device_thread = None
        self._groups = {}

    def _cancel_pending(self) -> list[_Request]:
        """Fail every request not answered yet (the run is being cancelled); returns them."""
        cancelled = []
        for group in self._groups.values():
            for request, _, _ in group.waiting:
                request.error = BatchCancelled("another job of the batched run failed")
                cancelled.append(request)
        self._groups = {}
        if self._device_thread is not None:
            self._device_thread.shutdown(wait=True, cancel_futures=True)
            self._device_thread = None
        return cancelled


class _JobModel:
    """One job's view of the shared proxy: call it like the model."""

    black_box_only = True  # the forward runs without autograd: white-box attacks cannot use it

    def __init__(self, scheduler: _Scheduler[Any], job: int) -> None:
        self._scheduler = scheduler
        self._job = job

    def __getattr__(self, name: str) -> Any:
        return _declared(self.__dict__["_scheduler"].proxy.model, name)

    def __call__(self, videos: Tensor) -> Tensor:
        if not isinstance(videos, Tensor) or videos.dim() < 1 or videos.shape[0] == 0:
            raise ValueError(f"videos must be a non-empty [N, ...] tensor, got {videos!r:.80}")
        return self._scheduler.submit(self._job, videos.detach())

    def __repr__(self) -> str:
        return f"BatchingProxy handle (job {self._job})"


# Job states: waiting for its turn to run its own code / running it / blocked on the model / done.
_RUNNABLE, _RUNNING, _WAITING, _FINISHED = "runnable", "running", "waiting", "finished"


@dataclass
class _Slot(Generic[R]):
    state: str = _RUNNABLE
    request: _Request | None = None
    result: R | None = None
    error: BaseException | None = None


class _Scheduler(Generic[R]):
    """Runs the job threads turn by turn and hands them the proxy's answers as passes finish (one
    condition variable)."""

    def __init__(
        self,
        jobs: Sequence[Callable[[Model], R]],
        proxy: BatchingProxy,
        *,
        concurrency: int,
        cooperative: bool,
        return_exceptions: bool,
        on_result: Callable[[int, Any], None] | None = None,
    ) -> None:
        self.jobs = list(jobs)
        self.on_result = on_result
        self.proxy = proxy
        self.concurrency = concurrency
        self.cooperative = cooperative
        self.return_exceptions = return_exceptions
        self.slots: list[_Slot[R]] = [_Slot() for _ in self.jobs]
        self.cv = threading.Condition()
        self.turn: set[int] = set()
        self.cancelled = False
        self.first_error: BaseException | None = None

    # ---- job side ----------------------------------------------------------------------------------

    def submit(self, job: int, videos: Tensor) -> Tensor:
        slot = self.slots[job]
        with self.cv:
            if self.cancelled:
                raise BatchCancelled("another job of the batched run failed")
            slot.request = _Request(job, videos)
            slot.state = _WAITING
            self._yield(job)
            request, slot.request = slot.request, None
        assert request is not None
        if request.error is not None:
            raise request.error
        if request.result is None:  # released without a result: the run was interrupted
            raise BatchCancelled("the batched run was interrupted")
        return request.result

    def _yield(self, job: int) -> None:
        # Called with the lock held: hand control back and wait for the next turn.
        self.turn.discard(job)
        self.cv.notify_all()
        self.cv.wait_for(lambda: job in self.turn)
        self.slots[job].state = _RUNNING

    def _body(self, job: int) -> None:
        slot = self.slots[job]
        with self.cv:
            self.cv.wait_for(lambda: job in self.turn)
            slot.state = _RUNNING
        try:
            if self.cancelled:
                raise BatchCancelled("another job of the batched run failed")
            slot.result = self.jobs[job](_JobModel(self, job))
        except BaseException as error:  # noqa: BLE001 - reported by run(), never lost in the thread
            slot.error = error
        finally:
            with self.cv:
                slot.state = _FINISHED
                self.turn.discard(job)
                self.cv.notify_all()

    # ---- scheduler side ----------------------------------------------------------------------------

    def run(self) -> list[R | BaseException]:
        queue = list(range(len(self.jobs)))
        live: list[int] = []

        def start_next() -> None:
            while queue and len(live) < self.concurrency:
                job = queue.pop(0)
                if self.cancelled:
                    continue
                live.append(job)
                threading.Thread(target=self._body, args=(job,), daemon=True, name=f"batched-job-{job}").start()

        try:
            with self.cv:
                start_next()
                while live:
                    runnable = sorted(j for j in live if self.slots[j].state == _RUNNABLE)
                    if runnable:
                        # Cooperative: one job's code at a time, in job order; otherwise all at once.
                        for batch in [[j] for j in runnable] if self.cooperative else [runnable]:
                            self.turn.update(batch)
                            self.cv.notify_all()
                            self.cv.wait_for(lambda b=batch: not (self.turn & set(b)))
                            for job in batch:
                                self._collect(job, live)
                            start_next()
                            # Passes finished meanwhile: their jobs go on while the device computes the rest.
                            self._wake(self.proxy._answer())
                        continue
                    # Every live job is blocked on the model.
                    if self.cancelled:
                        self.proxy._cancel_pending()
                        for job in live:
                            self.slots[job].state = _RUNNABLE
                    elif not self._wake(self.proxy._step()) and self.proxy._in_flight() is None and not any(
                        group.pending_rows for group in self.proxy._groups.values()
                    ):
                        raise RuntimeError("batched run stalled: jobs wait for rows the proxy does not hold")
                self.proxy._close()
        except BaseException:
            # Interrupted (e.g. KeyboardInterrupt): release every job so no thread is left blocked.
            with self.cv:
                self.cancelled = True
                self.proxy._cancel_pending()
                self.turn.update(range(len(self.jobs)))
                self.cv.notify_all()
            raise
        if self.first_error is not None and not self.return_exceptions:
            raise self.first_error
        return [slot.error if slot.error is not None else slot.result for slot in self.slots]  # type: ignore[misc]

    def _wake(self, answered: list[_Request]) -> bool:
        for request in answered:
            self.slots[request.job].state = _RUNNABLE
        return bool(answered)

    def _collect(self, job: int, live: list[int]) -> None:
        slot = self.slots[job]
        if slot.state == _WAITING:
            assert slot.request is not None
            if self.cancelled:
                slot.request.error = BatchCancelled("another job of the batched run failed")
                slot.state = _RUNNABLE
            else:
                self.proxy._add(slot.request)
        elif slot.state == _FINISHED:
            live.remove(job)
            if slot.error is not None and not isinstance(slot.error, BatchCancelled):
                if self.first_error is None:
                    self.first_error = slot.error
                if not self.return_exceptions:
                    self.cancelled = True
            if self.on_result is not None and (slot.error is None or self.return_exceptions):
                # In the scheduler thread while no job runs: the callback needs no locking of its own.
                self.on_result(job, slot.error if slot.error is not None else slot.result)


def run_batched(
    jobs: Sequence[Callable[[Model], R]],
    model: Model,
    *,
    max_batch: int = 32,
    pad: PadPolicy = "probe",
    overlap: bool | None = None,
    concurrency: int | None = None,
    cooperative: bool = True,
    return_exceptions: bool = False,
    proxy: BatchingProxy | None = None,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[R]:
    """Run ``jobs`` concurrently against ``model``, merging their model calls into shared forward passes.

    Each job is a callable ``job(model_like) -> result`` that builds its own oracle around the handle it
    is given (``lambda m: methods.run("vbad", m, video, label, budget=2000, seed=7)``), so per-video
    query counts and budgets are exactly those of a sequential run. Results come back in job order.

    Args:
        jobs: the attack jobs (any callables taking a model; typically one video each).
        model: callable ``[N, ...] -> logits [N, K]``, shared by all jobs.
        max_batch: rows per forward pass (at most, or exactly with ``pad=True``), >= 1.
        pad: ``True`` or ``"probe"`` (padding only to the smallest pass size the model computes
            identically; less work): every row's logits are independent of the other jobs, and the
            result is bit-identical to a sequential run against ``PaddedModel(model, max_batch)``;
            ``False``: no padding (see :class:`BatchingProxy`).
        overlap: run the forward passes in a device thread while the jobs build their next requests
            (same results; ``False`` runs them in the scheduling thread; ``None``: overlap for a model
            on a CUDA device, or on CPU when PyTorch's threads leave a core free).
        concurrency: most jobs alive at once (``None``: all); 1 gives the sequential reference.
        cooperative: run the jobs' own code one job at a time (deterministic, safe for attacks that touch
            process-wide state); ``False`` lets their tensor work overlap in threads.
        return_exceptions: put a failed job's exception in its place in the list and let the others
            finish; by default the first failure cancels the rest (their next model call raises
            :class:`BatchCancelled`) and is re-raised once every thread has stopped.
        proxy: a :class:`BatchingProxy` to use (e.g. to read its :attr:`~BatchingProxy.stats`); its
            ``model``, ``max_batch``, ``pad`` and ``overlap`` then apply and ``model`` must be its model.
        on_result: ``on_result(index, result_or_exception)`` called as each job finishes (in finishing
            order, from the scheduling thread, while no job runs), e.g. to store campaign rows as they
            come; an exception it raises stops the run like a failed job's.

    Returns:
        One result per job, in order.
    """
    if proxy is None:
        proxy = BatchingProxy(model, max_batch=max_batch, pad=pad, overlap=overlap)
    elif proxy.model is not model:
        raise ValueError("proxy must wrap the model given as `model`")
    jobs = list(jobs)
    for index, job in enumerate(jobs):
        if not callable(job):
            raise ValueError(f"jobs[{index}] must be a callable taking a model, got {job!r}")
    if concurrency is None:
        concurrency = max(1, len(jobs))
    _check_batch_size(concurrency, "concurrency")
    if not jobs:
        return []
    scheduler: _Scheduler[R] = _Scheduler(
        jobs, proxy, concurrency=concurrency, cooperative=cooperative, return_exceptions=return_exceptions,
        on_result=on_result,
    )
    return scheduler.run()  # type: ignore[return-value]
