"""Many attacks, one device: a dynamic batcher that merges the model calls of concurrent attack jobs.

A black-box attack on one video rarely fills a device: its NES population is tens of clips and its
reads and boundary searches are single clips. :func:`run_batched` runs K attack *jobs* (callables that
take a model and return a result, e.g. ``lambda m: methods.run("vbad", m, video, label, seed=s)``) in
K threads and hands each job its own handle on a shared :class:`BatchingProxy`. A job's oracle calls
the handle exactly as it would call the model; the handle blocks, and when every live job is waiting
for the model (a *round*), the proxy concatenates their requests, runs the forward passes and gives
each job its own rows. Each job keeps its own oracle, so query counting and budgets are unchanged.

Scheduling is deterministic. By default (``cooperative=True``) the jobs' own code runs one job at a
time, in job order, switching only at model calls, so jobs never race on process-wide state (the
global RNG that some initialisers use under ``fork_rng``, caches); the device does the merged work.

Pipelining. A forward pass is launched as soon as a round has a full pass's worth of rows, and with
``overlap=True`` it runs in a device thread while the next jobs build their requests, so the attacks'
own work hides behind the model's. The default (``overlap=None``) turns it on where something can run
beside the forward pass: a model on a CUDA device, or a CPU model when PyTorch uses fewer threads than
the process may run on (a core is left for the attacks). Measured on 2 cores with one PyTorch thread
(benchmarks/results_throughput.md): a V-BAD campaign at 0.64-0.66 of the model's best raw rate in
line and 0.77-0.94 overlapped on a quiet machine, but slower overlapped when other processes already
held the cores (then pass ``overlap=False``). Which rows go into which pass does not depend on timing,
so results are the same with and without ``overlap``.

Bit-identical results. A forward pass's output for one row is not always independent of the batch
it was computed in: on CPU, PyTorch's convolution and matmul kernels pick different algorithms for
different batch sizes (measured 2026-12-06 on the zoo: c3d-synth gives logits that differ by up to
5e-6 between batch 1 and batch >= 4, r2plus1d-synth between batch < 16 and >= 16 with one thread;
the thresholds move with the thread count). Such a difference can flip a boundary decision and send
an attack down another path. What *was* exact in every measurement is that, for a fixed batch size,
a row's logits depend only on that row (not on its position or on the other rows). So with
``pad=True`` (the default) the proxy computes every row in a forward pass of exactly ``max_batch``
rows, padding the last pass of a round with zeros: a row's logits are then a function of the row
alone, whichever jobs share the round, and a run is bit-identical to running the same jobs one after
another against :class:`PaddedModel` ``(model, max_batch)`` (or through this executor with
``concurrency=1``). With ``pad=False`` the forward passes take the round's rows as they come (no
padding work), and results equal a plain sequential run only for models whose kernels are
batch-size invariant. On CUDA the fixed-shape guarantee also needs deterministic kernels
(``torch.backends.cudnn.deterministic = True``, ``benchmark = False``).

This module is threat-model agnostic: it only sees ``[N, ...]`` tensors in and logits ``[N, K]`` out,
and it never counts queries (the jobs' oracles do).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch
from torch import Tensor, nn

__all__ = ["BatchCancelled", "BatchStats", "BatchingProxy", "PaddedModel", "run_batched"]

Model = Callable[[Tensor], Tensor]
R = TypeVar("R")


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
        rounds: merged rounds (each ends when every live job is waiting for the model).
        forwards: forward passes of the model.
        rows: real rows evaluated (the jobs' requests).
        padded_rows: zero rows added to fill fixed-shape passes (``pad=True``).
        forward_seconds: wall time inside the model's forward passes (asynchronous on CUDA unless the
            model synchronises).
        batch_sizes: rows of each forward pass, in order.
    """

    rounds: int = 0
    forwards: int = 0
    rows: int = 0
    padded_rows: int = 0
    forward_seconds: float = 0.0
    batch_sizes: list[int] = field(default_factory=list)

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


class _Group:
    """Pending rows of one input shape within a round, and what has been computed of them."""

    def __init__(self) -> None:
        self.requests: list[_Request] = []
        self.pending: list[Tensor] = []  # rows not computed yet, in request order
        self.pending_rows = 0
        self.outputs: list[Future[Tensor]] = []  # logits of the launched rows, in order


class BatchingProxy:
    """The shared model of a batched run: collects the jobs' requests and runs merged forward passes.

    Jobs do not call the proxy directly; each gets a handle (:meth:`handle`) that submits its request
    and blocks until the round that contains it has been computed. The scheduling itself lives in
    :func:`run_batched`; the proxy holds the merging, the forward passes and the statistics.

    Args:
        model: callable ``[N, ...] -> logits [N, K]`` (a video classifier); an ``nn.Module`` is put in
            eval mode. Inputs are moved to its device; logits come back on that device.
        max_batch: most rows per forward pass (with ``pad=True``: exactly this many). On CPU the zoo
            models run fastest at 4-64 rows per pass; on a GPU use 128-256.
        pad: compute every row in a pass of exactly ``max_batch`` rows (see the module docstring for
            the determinism this buys).
        overlap: run the passes in a device thread, overlapping the jobs' own work (same results);
            ``None``: for a model on a CUDA device, or on CPU when PyTorch leaves a core free.
    """

    def __init__(
        self, model: Model, *, max_batch: int = 32, pad: bool = True, overlap: bool | None = None
    ) -> None:
        if not callable(model):
            raise ValueError(f"model must be callable, got {model!r}")
        self.model = model.eval() if isinstance(model, nn.Module) else model
        self.max_batch = _check_batch_size(max_batch, "max_batch")
        self.pad = bool(pad)
        self.device = _model_device(self.model)
        self.overlap = _spare_compute(self.device) if overlap is None else bool(overlap)
        self.stats = BatchStats()
        self._groups: dict[tuple[Any, ...], _Group] = {}
        self._device_thread: ThreadPoolExecutor | None = None

    # ---- the merged computation (called by the scheduler thread only) -----------------------------

    def _add(self, request: _Request) -> None:
        videos = request.videos
        key = (tuple(videos.shape[1:]), videos.dtype, videos.device)
        group = self._groups.setdefault(key, _Group())
        group.requests.append(request)
        group.pending.append(videos)
        group.pending_rows += videos.shape[0]
        self.stats.rows += videos.shape[0]
        # A full pass's worth of rows can run now (on a GPU it then overlaps the other jobs' CPU work).
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
        if self.overlap:
            if self._device_thread is None:
                # One thread: passes run in launch order, so the statistics keep that order too.
                self._device_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batched-device")
            group.outputs.append(self._device_thread.submit(self._forward, rows[:count]))
            return
        done: Future[Tensor] = Future()
        try:
            done.set_result(self._forward(rows[:count]))
        except Exception as error:  # noqa: BLE001 - retried request by request at the flush
            done.set_exception(error)
        group.outputs.append(done)

    def _forward(self, rows: Tensor) -> Tensor:
        start = time.perf_counter()
        with torch.inference_mode():
            outputs = []
            for first in range(0, rows.shape[0], self.max_batch):
                chunk = rows[first : first + self.max_batch]
                if self.pad:
                    outputs.append(_forward_padded(self.model, chunk, self.max_batch, self.device))
                    self.stats.padded_rows += self.max_batch - chunk.shape[0]
                    self.stats.batch_sizes.append(self.max_batch)
                else:
                    inputs = chunk if self.device is None else chunk.to(self.device)
                    outputs.append(_checked(self.model(inputs), chunk.shape[0]))
                    self.stats.batch_sizes.append(chunk.shape[0])
                self.stats.forwards += 1
            logits = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        self.stats.forward_seconds += time.perf_counter() - start
        return logits

    def _flush(self) -> None:
        """Compute what is left of the round and give every request its rows."""
        if not self._groups:
            return
        self.stats.rounds += 1
        for group in self._groups.values():
            self._launch(group, full_only=False)
        if self._device_thread is not None:
            # Every pass of the round has finished before any result is handed out or retried.
            self._device_thread.shutdown(wait=True)
            self._device_thread = None
        try:
            for group in self._groups.values():
                self._deliver(group)
        finally:
            self._groups = {}

    def _deliver(self, group: _Group) -> None:
        """Wait for a group's passes and hand each request its rows (or its error)."""
        try:
            outputs = [future.result() for future in group.outputs]
        except Exception:  # noqa: BLE001 - retried request by request below
            # One request's rows broke the merged pass: evaluate each alone, so only it fails.
            for request in group.requests:
                try:
                    request.result = self._forward(request.videos).clone()
                except Exception as error:  # noqa: BLE001 - handed to the job that sent it
                    request.error = error
            return
        logits = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
        offset = 0
        for request in group.requests:
            n = request.videos.shape[0]
            # A copy: a job must not see (or pin) the memory of the other jobs' rows.
            request.result = logits[offset : offset + n].clone()
            offset += n

    def _cancel_pending(self) -> None:
        for group in self._groups.values():
            for request in group.requests:
                request.error = BatchCancelled("another job of the batched run failed")
        self._groups = {}
        if self._device_thread is not None:
            self._device_thread.shutdown(wait=True, cancel_futures=True)
            self._device_thread = None


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
    """Runs the job threads turn by turn and the proxy's rounds between them (one condition variable)."""

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
                        continue
                    # Every live job is blocked on the model: the round is complete.
                    if self.cancelled:
                        self.proxy._cancel_pending()
                    else:
                        self.proxy._flush()
                    for job in live:
                        self.slots[job].state = _RUNNABLE
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
    pad: bool = True,
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
        max_batch: rows per forward pass (at most, or exactly with ``pad``), >= 1.
        pad: fixed-shape passes, which make every row's logits independent of the other jobs (the
            result is then bit-identical to a sequential run against ``PaddedModel(model, max_batch)``).
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
