"""A campaign backend on Ray: items run in a pool of long-lived Ray actors, on one machine or a cluster.

:class:`RayBackend` implements :class:`~vidattack.campaign.backends.Backend`. Each actor is one worker
process that keeps what it loads (models, data sources, attacker data: the per-process caches of
:mod:`vidattack.campaign.execution`) for the whole run (or across runs, with ``keep_workers``), so a
model is loaded once per worker, not once per item. Items are drawn from the runner lazily (the runner claims each one in the store just before
it is handed out), ``batch_videos`` (or 1) per task and at most ``max_in_flight_per_worker`` tasks per
actor, and rows come back to the driver as tasks finish (``ray.wait``): the runner stays the only writer of the store.

Faults: an actor that dies (killed, out of memory, its node lost) loses only the items it held; those
are handed to a fresh actor up to ``max_retries`` times, then come back as ``status = "error"`` rows
naming the worker death. A driver that stops leaves its claims to the next run (see
:meth:`~vidattack.campaign.store.Store.claim`); re-running the command resumes.

Ray is optional (``pip install vidattack[ray]``) and imported only when a backend is used.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from vidattack.campaign.backends import ItemFunction
from vidattack.campaign.execution import item_row

__all__ = ["RayBackend", "failure_row"]


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RuntimeError("the Ray backend needs the `ray` package: pip install 'vidattack[ray]'") from None
    return ray


def failure_row(item: Any, reason: str) -> dict[str, Any]:
    """The error row of an item that never produced one (its worker died ``max_retries + 1`` times).

    Carries the item's identity and settings like the rows of
    :func:`~vidattack.campaign.execution.execute_item`, so the store and reports treat it as any error.
    """
    return {**item_row(item, "ray"), "status": "error", "error": reason, "finished_at": time.time()}


class _Worker:
    """The body of one Ray actor: runs items, keeping its process's caches (loaded models) across tasks
    and across the runs of a backend with ``keep_workers``.

    Without ``batch_videos`` a task's items run one after the other (rows identical to
    :class:`~vidattack.campaign.backends.LocalBackend`'s); with it, a task's items are attacked together
    by the batching executor (:class:`~vidattack.campaign.execution.BatchedBackend`, rows identical to
    the in-process ``batch_videos`` runs').
    """

    def __init__(self, threads: int) -> None:
        import torch

        # As in LocalBackend: one process per task, ``threads`` intra-op threads (1 by default, which
        # also keeps floating-point results identical to the local backend's).
        torch.set_num_threads(threads)

    def pid(self) -> int:
        return os.getpid()

    def run_items(
        self,
        function: ItemFunction,
        context: Any,
        items: list[Any],
        batch_videos: int | None,
        forward_batch: int,
    ) -> list[dict[str, Any]]:
        if batch_videos is None:
            return [function(context, item) for item in items]
        from vidattack.campaign.execution import BatchedBackend

        executor = BatchedBackend(batch_videos, max_batch=forward_batch)
        return list(executor.run(function, context, items))


@dataclass
class _Task:
    """One task in flight: its items, the slot and actor that run it, and each item's hand-out count."""

    items: list[Any]
    slot: int
    actor: Any
    pid: int
    attempts: list[int] = field(default_factory=list)


class RayBackend:
    """Run campaign items on Ray actors (a local Ray started on demand, or an existing cluster).

    Args:
        address: the cluster to join (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); ``None``
            starts a local Ray with ``num_cpus`` CPUs (unless Ray is already initialised in this
            process, which is then used as it is).
        num_cpus_per_task: CPUs reserved for each worker (also its torch intra-op threads, at least 1).
        num_gpus_per_task: GPUs reserved for each worker (fractions share a GPU); run with
            ``device="cuda"``: Ray makes the worker's GPU the visible one.
        max_retries: how many times the items of a worker that died are handed to a fresh worker
            before they are reported as errors (>= 0).
        workers: number of actors; ``None``: as many as the cluster's CPUs (and GPUs, when
            ``num_gpus_per_task > 0``) allow.
        num_cpus: size of the local Ray started when ``address`` is ``None`` (``None``: all cores, or
            ``workers * num_cpus_per_task`` when ``workers`` is given).
        max_in_flight_per_worker: tasks queued on one actor at a time (1: a dying worker loses only
            the item it is running; 2 hides the round trip between items).
        batch_videos: ``None``: one item per task, run alone. ``K``: tasks of K items, attacked together
            in the worker by the batching executor (their queries merged into forward passes of
            ``forward_batch`` rows), as ``run_campaign(batch_videos=K)`` does in one process.
        forward_batch: rows per merged forward pass with ``batch_videos``.
        start_timeout: seconds to wait for the actors to start before failing (too few resources).
        keep_workers: keep the actors (and the models they loaded) between runs, and a Ray this backend
            started, until :meth:`close` (or the end of a ``with`` block); by default both go at the
            end of each run.
        init_options: extra keyword arguments of ``ray.init`` (``runtime_env``, ``log_to_driver``, ...).
    """

    def __init__(
        self,
        address: str | None = None,
        num_cpus_per_task: float = 1,
        num_gpus_per_task: float = 0,
        max_retries: int = 2,
        *,
        workers: int | None = None,
        num_cpus: int | None = None,
        max_in_flight_per_worker: int = 1,
        batch_videos: int | None = None,
        forward_batch: int = 32,
        start_timeout: float = 300.0,
        keep_workers: bool = False,
        init_options: dict[str, Any] | None = None,
    ) -> None:
        _import_ray()  # fail before the campaign is planned, not after, when ray is not installed
        if not num_cpus_per_task > 0:
            raise ValueError(f"num_cpus_per_task must be positive, got {num_cpus_per_task!r}")
        if not num_gpus_per_task >= 0:
            raise ValueError(f"num_gpus_per_task must be >= 0, got {num_gpus_per_task!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        if num_cpus is not None and (not isinstance(num_cpus, int) or num_cpus < 1):
            raise ValueError(f"num_cpus must be a positive integer, got {num_cpus!r}")
        if not isinstance(max_in_flight_per_worker, int) or max_in_flight_per_worker < 1:
            raise ValueError(
                f"max_in_flight_per_worker must be a positive integer, got {max_in_flight_per_worker!r}"
            )
        if batch_videos is not None and (not isinstance(batch_videos, int) or batch_videos < 1):
            raise ValueError(f"batch_videos must be None or a positive integer, got {batch_videos!r}")
        if not isinstance(forward_batch, int) or forward_batch < 1:
            raise ValueError(f"forward_batch must be a positive integer, got {forward_batch!r}")
        self.address = address
        self.num_cpus_per_task = num_cpus_per_task
        self.num_gpus_per_task = num_gpus_per_task
        self.max_retries = max_retries
        self.workers = workers
        self.num_cpus = num_cpus
        self.max_in_flight_per_worker = max_in_flight_per_worker
        self.batch_videos = batch_videos
        self.forward_batch = forward_batch
        self.start_timeout = start_timeout
        self.keep_workers = keep_workers
        self.init_options = dict(init_options or {})
        #: pid of each live actor, by slot (for monitoring and the fault tests).
        self.worker_pids: dict[int, int] = {}
        #: items handed out and not yet back, by the pid of the actor holding them.
        self.in_flight: dict[int, list[Any]] = {}
        #: actors found dead during the last run, and items handed out again because of it.
        self.deaths = 0
        self.retried = 0
        self._slots: dict[int, Any] = {}
        self._session: str | None = None  # the Ray job the kept actors belong to
        self._owns_ray = False
        self._actor_class: Any = None

    def __enter__(self) -> RayBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the actors, and the local Ray if this backend started it."""
        ray = _import_ray()
        if ray.is_initialized() and self._session == _job_id(ray):
            for actor in self._slots.values():
                _kill(ray, actor)
        self._slots, self.worker_pids, self.in_flight, self._session = {}, {}, {}, None
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
        self._owns_ray = False

    # -- Ray session and actors ----------------------------------------------------------------------

    def _connect(self, ray: Any) -> None:
        """Initialise Ray unless it already is (a Ray started here is stopped by :meth:`close`)."""
        if ray.is_initialized():
            return
        options = {"include_dashboard": False, **self.init_options}
        if self.address is not None:
            ray.init(address=self.address, **options)
        else:
            num_cpus = self.num_cpus
            if num_cpus is None and self.workers is not None:
                num_cpus = max(1, int(round(self.workers * self.num_cpus_per_task)))
            ray.init(num_cpus=num_cpus, **options)
        self._owns_ray = True

    def _pool_size(self, ray: Any) -> int:
        if self.workers is not None:
            return self.workers
        resources = ray.cluster_resources()
        size = int(resources.get("CPU", 0) // self.num_cpus_per_task)
        if self.num_gpus_per_task > 0:
            size = min(size, int(resources.get("GPU", 0) // self.num_gpus_per_task))
        if size < 1:
            raise ValueError(
                f"the Ray cluster ({resources.get('CPU', 0)} CPUs, {resources.get('GPU', 0)} GPUs) cannot "
                f"hold one worker of {self.num_cpus_per_task} CPUs and {self.num_gpus_per_task} GPUs"
            )
        return size

    def _start(self, ray: Any, count: int) -> list[tuple[Any, int]]:
        """Start ``count`` actors and wait until they run; return ``(handle, pid)`` of each."""
        threads = max(1, int(self.num_cpus_per_task))
        options = {"num_cpus": self.num_cpus_per_task, "num_gpus": self.num_gpus_per_task}
        actors = [self._actor_class.options(**options).remote(threads) for _ in range(count)]
        refs = [actor.pid.remote() for actor in actors]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=self.start_timeout)
        if len(ready) < len(refs):
            for actor in actors:
                _kill(ray, actor)
            raise RuntimeError(
                f"Ray started {len(ready)} of {len(refs)} workers in {self.start_timeout:.0f} s: does the "
                f"cluster have {self.num_cpus_per_task} CPU(s) and {self.num_gpus_per_task} GPU(s) free "
                "per worker?"
            )
        try:
            pids = ray.get(refs)
        except ray.exceptions.RayError as error:
            raise RuntimeError(f"Ray workers failed to start: {_reason(error)}") from None
        return list(zip(actors, pids, strict=True))

    def _ensure_pool(self, ray: Any) -> None:
        """Start the actors, or check that the kept ones live (replacing the dead)."""
        if self._actor_class is None:
            # Ray's own retries are off: the scheduler retries items itself, counting hand-outs.
            self._actor_class = ray.remote(max_restarts=0, max_task_retries=0)(_Worker)
        if self._session != _job_id(ray):  # first run, or Ray was restarted since
            self._slots, self.worker_pids, self._session = {}, {}, _job_id(ray)
        if not self._slots:
            for slot, (actor, pid) in enumerate(self._start(ray, self._pool_size(ray))):
                self._slots[slot], self.worker_pids[slot] = actor, pid
            return
        for slot, actor in list(self._slots.items()):
            try:
                ray.get(actor.pid.remote(), timeout=self.start_timeout)
            except ray.exceptions.RayError:
                self._replace(ray, slot)

    def _replace(self, ray: Any, slot: int) -> None:
        """Put a fresh actor in ``slot`` (Ray places it where resources are free, maybe another node)."""
        self.deaths += 1
        _kill(ray, self._slots[slot])
        ((actor, pid),) = self._start(ray, 1)
        self._slots[slot], self.worker_pids[slot] = actor, pid

    # -- the run -------------------------------------------------------------------------------------

    def run(self, function: ItemFunction, context: Any, items: Iterable[Any]) -> Iterator[dict[str, Any]]:
        """Yield ``function(context, item)`` for every item, in completion order (see the class doc)."""
        ray = _import_ray()
        self.in_flight, self.deaths, self.retried = {}, 0, 0
        try:
            self._connect(ray)
            self._ensure_pool(ray)
            # Sent to the object store once; each task carries only references.
            shared = (ray.put(function), ray.put(context))
            yield from self._schedule(ray, shared, items)
        finally:
            self.in_flight = {}
            if not self.keep_workers:
                self.close()

    def _schedule(self, ray: Any, shared: tuple[Any, Any], items: Iterable[Any]) -> Iterator[dict[str, Any]]:
        slots = self._slots
        queue = iter(items)
        exhausted = False
        # Items of dead workers, with how many times each has been handed out; they go first.
        retry: deque[tuple[Any, int]] = deque()
        tasks: dict[Any, _Task] = {}

        per_task = self.batch_videos or 1

        def draw() -> list[tuple[Any, int]]:
            nonlocal exhausted
            batch: list[tuple[Any, int]] = []
            while len(batch) < per_task and retry:
                batch.append(retry.popleft())
            while len(batch) < per_task and not exhausted:
                item = next(queue, None)  # the runner claims the item here
                if item is None:
                    exhausted = True
                else:
                    batch.append((item, 0))
            return batch

        def load(slot: int) -> int:
            return sum(task.actor is slots[slot] for task in tasks.values())

        while True:
            for slot in sorted(slots, key=load):
                while load(slot) < self.max_in_flight_per_worker:
                    batch = draw()
                    if not batch:
                        break
                    task = _Task([item for item, _ in batch], slot, slots[slot], self.worker_pids[slot],
                                 [count + 1 for _, count in batch])  # fmt: skip
                    tasks[
                        task.actor.run_items.remote(
                            *shared, task.items, self.batch_videos, self.forward_batch
                        )
                    ] = task
                    self.in_flight.setdefault(task.pid, []).extend(task.items)
            if not tasks:
                return
            (ref,), _ = ray.wait(list(tasks), num_returns=1)
            task = tasks.pop(ref)
            held = self.in_flight.get(task.pid, [])
            for item in task.items:
                held.remove(item)
            if not held:
                self.in_flight.pop(task.pid, None)
            try:
                rows = ray.get(ref)
            except ray.exceptions.RayTaskError as error:
                # The function itself raised (execute_item never does): the same would happen again.
                yield from (failure_row(item, f"worker error: {_reason(error)}") for item in task.items)
                continue
            except ray.exceptions.RayError as error:  # the actor died, its node was lost, ...
                if slots[task.slot] is task.actor:
                    # The first failed task of a dead actor replaces it; its other tasks fail on their own.
                    self._replace(ray, task.slot)
                reason = f"Ray worker (pid {task.pid}) died: {_reason(error)}"
                for item, attempts in zip(task.items, task.attempts, strict=True):
                    if attempts <= self.max_retries:
                        retry.append((item, attempts))
                        self.retried += 1
                    else:
                        yield failure_row(
                            item, f"{reason} (handed out {attempts} time(s), max_retries={self.max_retries})"
                        )
                continue
            yield from rows


def _kill(ray: Any, actor: Any) -> None:
    try:
        ray.kill(actor)
    except Exception:  # noqa: BLE001 - an actor that is gone already is what we want
        pass


def _job_id(ray: Any) -> str:
    return ray.get_runtime_context().get_job_id()


def _reason(error: BaseException) -> str:
    """The first line of a Ray error, without Ray's long preamble."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {first}".rstrip(": ")
