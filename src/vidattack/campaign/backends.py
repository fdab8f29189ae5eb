"""Where campaign items run: a small interface so that a cluster backend (Ray) can plug in later.

A backend receives a picklable :class:`~vidattack.campaign.execution.WorkerContext` (the config, the
device, where to save videos) and the items, runs ``execute_item(context, item)`` for each, and yields
the returned rows as they finish, in any order. It never touches the store: the runner's main process
is the only writer, which keeps one transaction per row and needs no cross-process locking.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Protocol

import torch

__all__ = ["Backend", "LocalBackend", "ItemFunction"]

# execute_item(context, item) -> row; must be importable at module level (spawned workers pickle it by name).
ItemFunction = Callable[[Any, Any], dict[str, Any]]


class Backend(Protocol):
    """Runs campaign items and yields their rows as they complete."""

    def run(self, function: ItemFunction, context: Any, items: Iterable[Any]) -> Iterator[dict[str, Any]]:
        """Yield ``function(context, item)`` for every item, in completion order; ``items`` is consumed
        lazily (the runner claims an item when it is drawn)."""
        ...


class LocalBackend:
    """Run items on this machine: in this process (``workers=1``) or in ``workers`` spawned processes.

    Each worker process loads its own copy of each model and uses one intra-op thread
    (``torch.set_num_threads(1)``): N single-threaded workers use N cores better than one process
    with N threads on these small per-video workloads, and the results do not depend on ``workers``.
    The in-process path uses one thread too, for the same reason (identical floating-point results).

    Args:
        workers: number of worker processes (1: run in the calling process, easiest to debug).
        max_in_flight: items handed to the pool ahead of completion (default ``2 * workers``); kept small
            so that stopping the runner discards little queued work.
    """

    def __init__(self, workers: int = 1, *, max_in_flight: int | None = None) -> None:
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.workers = workers
        self.max_in_flight = max_in_flight or 2 * workers

    def run(self, function: ItemFunction, context: Any, items: Iterable[Any]) -> Iterator[dict[str, Any]]:
        """Yield ``function(context, item)`` for every item, in completion order."""
        if self.workers == 1:
            yield from self._run_inline(function, context, items)
        else:
            yield from self._run_pool(function, context, items)

    @staticmethod
    def _run_inline(function: ItemFunction, context: Any, items: Iterable[Any]) -> Iterator[dict[str, Any]]:
        previous = torch.get_num_threads()
        try:
            for item in items:
                torch.set_num_threads(1)
                row = function(context, item)
                # The consumer (progress bar, store) runs between items with the caller's settings.
                torch.set_num_threads(previous)
                yield row
        finally:
            torch.set_num_threads(previous)

    def _run_pool(
        self, function: ItemFunction, context: Any, items: Iterable[Any]
    ) -> Iterator[dict[str, Any]]:
        # spawn, not fork: forking a process that has run torch (thread pools, CUDA) is unsafe.
        spawn = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=spawn, initializer=_init_worker, initargs=(os.getpid(),)
        )
        # Items are drawn lazily: the runner claims each one only when a worker is about to take it.
        queue = iter(items)
        exhausted = False
        running: set[Future[dict[str, Any]]] = set()
        try:
            while not exhausted or running:
                while not exhausted and len(running) < self.max_in_flight:
                    item = next(queue, None)
                    if item is None:
                        exhausted = True
                        break
                    running.add(pool.submit(function, context, item))
                if not running:
                    break
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _init_worker(parent_pid: int) -> None:
    torch.set_num_threads(1)
    # A worker must not outlive a killed runner (SIGKILL gives the pool no chance to stop it): watch
    # the parent and exit when it is gone.
    thread = threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True)
    thread.start()


def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)
        time.sleep(0.5)
