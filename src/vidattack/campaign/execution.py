"""Run a campaign: expand models x attacks x videos into items, skip finished ones, run the rest.

Resuming is re-running: an item whose row is in the store is skipped, and every finished item is
committed on its own, so a killed run loses only the items in flight. Each item is one call of
:func:`vidattack.methods.record.attack_video` (the same code path as ``vidattack attack``) with a seed derived
from the campaign seed and the item's identity, so results do not depend on the order items run in,
on the number of workers, or on what was done before a restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import traceback
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vidattack import __version__
from vidattack.campaign.backends import Backend, LocalBackend
from vidattack.campaign.config import CampaignConfig, DataConfig
from vidattack.campaign.sources import VideoSource, open_source
from vidattack.campaign.store import METRIC_COLUMNS, ItemKey, Store, runner_identity
from vidattack.data.synthetic import SynthConfig
from vidattack.io import write_lossless
from vidattack.methods.attacker_data import (
    AttackerData,
    FolderAttackerData,
    SyntheticAttackerData,
    open_attacker_data,
)
from vidattack.methods.record import attack_video
from vidattack.naming import digest, slug
from vidattack.video import to_uint8

__all__ = [
    "Item",
    "WorkerContext",
    "RunSummary",
    "run_campaign",
    "plan_campaign",
    "execute_item",
    "item_seed",
    "resolve_target",
    "select_one_per_class",
    "model_fingerprint",
    "video_dir_for",
]

_SELECTION_BATCH = 32


@dataclass(frozen=True)
class Item:
    """One unit of work: attack ``video`` of ``dataset`` on ``model`` with the attack labelled ``attack``.

    ``label`` is the true class when selection already read it (``None``: read from the source).
    ``target`` is the campaign's target mode (``"untargeted"``, ``"random"`` or a class index); the
    worker resolves it to a class with :func:`resolve_target`.
    """

    campaign: str
    dataset: str
    model: str
    model_path: str
    attack: str
    method: str
    threat: str
    params: dict[str, Any]
    eps: float | None
    budget: int | None
    target: str | int
    video: int
    label: int | None
    num_classes: int
    campaign_seed: int
    seed: int
    config_hash: str
    settings_hash: str

    @property
    def key(self) -> ItemKey:
        """The item's identity in the store."""
        return (self.campaign, self.dataset, self.model, self.attack, self.video)


@dataclass(frozen=True)
class WorkerContext:
    """What every worker needs besides the item (picklable for spawned processes)."""

    data: DataConfig
    device: str = "cpu"
    video_dir: str | None = None
    attacker_data: str | None = None
    attacker_split: str = "train"


def open_campaign_attacker_data(context: WorkerContext, model_classes: Sequence[str] | None = None) -> AttackerData:
    """The campaign's attacker data: the configured one, else its own data set's ``attacker_split``
    (a folder's labels in the order of ``model_classes``, the attacked model's class names)."""
    if context.attacker_data is not None:
        return open_attacker_data(context.attacker_data, split=context.attacker_split, model_classes=model_classes)
    if context.data.source == "synthetic":
        return SyntheticAttackerData(context.attacker_split, SynthConfig(**context.data.synth))
    return FolderAttackerData(
        context.data.root, split=context.attacker_split, model_classes=model_classes  # type: ignore[arg-type]
    )


_ATTACKER_DATA: dict[tuple, AttackerData] = {}


def _attacker_data(context: WorkerContext, model: Any) -> AttackerData:
    # One per worker process, campaign and class order: folder clips are decoded once and reused.
    classes = _model_classes(model)
    key = (context.attacker_data, context.attacker_split, repr(context.data.identity()), classes)
    if key not in _ATTACKER_DATA:
        _ATTACKER_DATA[key] = open_campaign_attacker_data(context, classes)
    return _ATTACKER_DATA[key]


@dataclass
class RunSummary:
    """What a run did: items planned, already in the store, run now, and how many of those errored."""

    planned: int = 0
    already_done: int = 0
    ran: int = 0
    errors: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    claimed_elsewhere: int = 0


class _Heartbeat:
    """Renews a runner's claims every ``lease / 4`` seconds from a thread with its own connection."""

    def __init__(self, db: Path, owner: str, lease: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(db, owner, lease), daemon=True)
        self._thread.start()

    def _run(self, db: Path, owner: str, lease: float) -> None:
        with Store(db) as store:
            while not self._stop.wait(lease / 4):
                store.renew_claims(owner, lease)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _row_key(row: dict[str, Any]) -> ItemKey:
    return (row["campaign"], row["dataset"], row["model"], row["attack"], int(row["video"]))


def _store_row(store: Store, row: dict[str, Any]) -> None:
    """Store ``row``; a row the store cannot take (a value out of SQLite's range, ...) becomes the item's
    error row with the reason, so one bad row never stops the campaign."""
    try:
        store.insert_result(row)
    except (sqlite3.Error, OverflowError, ValueError, TypeError) as error:
        fallback = {key: row.get(key) for key in ("campaign", "dataset", "model", "attack", "video", "method",
                                                  "threat", "seed", "version", "config_hash", "settings_hash")}
        fallback.update(status="error", error=f"could not store the result: {type(error).__name__}: {error}",
                        finished_at=time.time())  # fmt: skip
        store.insert_result(fallback)


def _digest(*parts: Any) -> str:
    return digest(parts)


def item_seed(campaign_seed: int, dataset: str, model: str, attack: str, video: int) -> int:
    """The attack seed of one item: a hash of the campaign seed and the item's identity (31 bits)."""
    return int(_digest("item", campaign_seed, dataset, model, attack, video)[:8], 16) & 0x7FFFFFFF


def resolve_target(
    mode: str | int, campaign_seed: int, dataset: str, video: int, label: int, num_classes: int
) -> int | None:
    """The target class of a video: ``None`` (untargeted), the fixed class, or a random class != label.

    The random target depends only on the campaign seed, the data set and the video, so every model and
    attack aims at the same class for the same video (comparable rows).
    """
    if mode == "untargeted":
        return None
    if isinstance(mode, int):
        return mode
    if num_classes < 2:
        raise ValueError("a random target needs a model with at least two classes")
    draw = int(_digest("target", campaign_seed, dataset, video)[:12], 16) % (num_classes - 1)
    return draw if draw < label else draw + 1


def select_one_per_class(
    order: list[int], predictions: dict[int, tuple[int, int]], limit: int | None
) -> list[int]:
    """V-BAD's selection: walking ``order``, keep the first correctly classified video of each class.

    Args:
        order: candidate video indices in the (seeded) order they are considered.
        predictions: ``{video: (label, prediction)}``; videos missing from it are skipped.
        limit: stop after this many videos.

    Returns:
        The chosen video indices, sorted by class.
    """
    chosen: dict[int, int] = {}
    for video in order:
        if video not in predictions:
            continue
        label, pred = predictions[video]
        if label == pred and label >= 0 and label not in chosen:
            chosen[label] = video
            if limit is not None and len(chosen) >= limit:
                break
    return [chosen[label] for label in sorted(chosen)]


def model_fingerprint(model: Any) -> str:
    """A hash of every tensor of ``model``'s state dict: keys cached predictions to the exact weights.

    A remote model has no weights to hash; its URL and its class list stand for it.
    """
    digest = hashlib.sha256()
    if not isinstance(model, torch.nn.Module):
        digest.update(f"{getattr(model, 'url', repr(model))}|{getattr(model, 'class_names', '')}".encode())
        return digest.hexdigest()[:16]
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def video_dir_for(db: str | Path) -> Path:
    """Where ``--save-videos`` puts adversarial videos: ``DB_STEM.videos/`` next to the database."""
    db = Path(db)
    return db.parent / f"{db.stem}.videos"


# ---------------------------------------------------------------------------------------------------
# Per-process caches: a worker loads each model and opens the source once, not once per item.

_MODELS: dict[tuple[str, str], Any] = {}
_SOURCES: dict[tuple[str, Any, Any, Any], VideoSource] = {}


def _load_model(path: str, device: str) -> Any:
    key = (path, device)
    if key not in _MODELS:
        from vidattack import models

        model = models.load(path, device=device)
        if isinstance(model, torch.nn.Module):
            model.eval()
        _MODELS[key] = model
    return _MODELS[key]


def _clip_shape(model: Any) -> tuple[int | None, Any]:
    frames = getattr(model, "num_frames", None) or getattr(model, "input_frames", None)
    size = getattr(model, "input_size", None)
    return frames, size


def _model_classes(model: Any) -> tuple[str, ...] | None:
    names = getattr(model, "class_names", None)
    return None if names is None else tuple(str(name) for name in names)


def _open_source(data: DataConfig, model: Any) -> VideoSource:
    folder = data.source == "folder"
    frames, size = _clip_shape(model) if folder else (None, None)
    classes = _model_classes(model) if folder else None  # a folder's labels follow the model's classes
    key = (json.dumps(data.identity(), sort_keys=True), frames, size, classes)
    if key not in _SOURCES:
        _SOURCES[key] = open_source(data, frames=frames, size=size, model_classes=classes)
    return _SOURCES[key]


def _num_classes(model: Any, source: VideoSource, device: str) -> int:
    count = getattr(model, "num_classes", None)
    if isinstance(count, int) and count > 0:
        return count
    videos, _ = source.load([0])
    with torch.no_grad():
        return int(model(videos.to(device)).shape[1])


# ---------------------------------------------------------------------------------------------------
# Planning (main process)


def _select(
    config: CampaignConfig,
    store: Store,
    source: VideoSource,
    model: Any,
    fingerprint: str,
    device: str,
    notes: list[str],
    model_name: str,
) -> list[tuple[int, int | None]]:
    """``[(video, label or None)]`` chosen for one model."""
    selection = config.selection
    total = len(source)
    if selection.mode == "indices":
        for index in selection.indices:
            if index >= total:
                raise ValueError(
                    f"{config.source}: selection.indices: video {index} is out of range; "
                    f"{config.data.name} has {total} videos"
                )
        chosen = list(selection.indices)[: selection.limit]
        return [(index, None) for index in chosen]
    if selection.mode == "first-n":
        return [(index, None) for index in range(min(selection.limit or total, total))]
    # one-per-class: walk a seeded permutation (the same for every model), evaluating the clean model in
    # batches only as far as needed; predictions are cached in the store, so a resumed run or a report
    # never evaluates the clean model again.
    source_key = _digest(config.data.identity())[:16]
    cached = store.predictions(source_key, fingerprint)
    generator = torch.Generator().manual_seed(
        int(_digest("selection", config.seed, config.data.name)[:8], 16)
    )
    order = torch.randperm(total, generator=generator).tolist()
    num_classes = _num_classes(model, source, device)
    wanted = min(num_classes, selection.limit or num_classes)
    for start in range(0, total, _SELECTION_BATCH):
        if len(select_one_per_class(order[:start], cached, wanted)) >= wanted:
            break
        batch = [video for video in order[start : start + _SELECTION_BATCH] if video not in cached]
        if not batch:
            continue
        entries = _clean_predictions(source, model, batch, device)
        store.add_predictions(source_key, fingerprint, entries)
        cached.update({video: (label, pred) for video, label, pred in entries})
    chosen = select_one_per_class(order, cached, wanted)
    if len(chosen) < wanted:
        notes.append(
            f"{model_name}: only {len(chosen)} of {wanted} classes have a correctly classified video "
            f"in {config.data.name}"
        )
    return [(video, cached[video][0]) for video in chosen]


def _clean_predictions(
    source: VideoSource, model: Any, batch: list[int], device: str
) -> list[tuple[int, int, int]]:
    """``(video, label, prediction)`` of a batch; an undecodable video gets ``(-1, -1)`` (never selected)."""
    try:
        videos, labels = source.load(batch)
    except (ValueError, OSError):
        # One corrupt file must not stop selection: fall back to one video at a time.
        if len(batch) == 1:
            return [(batch[0], -1, -1)]
        return [entry for video in batch for entry in _clean_predictions(source, model, [video], device)]
    with torch.no_grad():
        preds = model(videos.to(device)).argmax(1).cpu()
    return [(video, int(label), int(pred)) for video, label, pred in zip(batch, labels, preds, strict=True)]


def plan_campaign(
    config: CampaignConfig, store: Store, *, device: str = "cpu", notes: list[str] | None = None
) -> list[Item]:
    """Expand ``config`` into items (model-major, then attack, then video), recording the plan.

    Loads every model once (selection evaluates it on clean videos; its weights' fingerprint guards the
    store against mixing results of different weights under one name).

    Raises:
        ValueError: a model that does not load, an index out of range, or stored results of the same
            (campaign, model, attack) made with other settings.
    """
    from vidattack import methods

    notes = notes if notes is not None else []
    store.register_campaign(config.name, config.config_hash, config.text, config.source)
    items: list[Item] = []
    for model_name, model_path in zip(config.models, config.model_paths, strict=True):
        try:
            model = _load_model(model_path, device)
        except (ValueError, OSError) as error:
            raise ValueError(f"model {model_name!r}: {error}") from None
        fingerprint = model_fingerprint(model)
        source = _open_source(config.data, model)
        num_classes = _num_classes(model, source, device)
        chosen = _select(config, store, source, model, fingerprint, device, notes, model_name)
        for attack in config.attacks:
            if isinstance(attack.target, int) and attack.target >= num_classes:
                raise ValueError(
                    f"{config.source}: attack {attack.label!r}: target {attack.target} is not a class "
                    f"of model {model_name!r} ({num_classes} classes)"
                )
            settings = {
                "seed": config.seed,
                "data": config.data.identity(),
                "model": fingerprint,
                **attack.identity(),
            }
            settings_hash = _digest(settings)[:16]
            description = (
                f"method={attack.method} eps={attack.eps} budget={attack.budget} target={attack.target} "
                f"params={json.dumps(attack.params, sort_keys=True)} weights={fingerprint[:8]} "
                f"seed={config.seed}"
            )
            store.check_settings(
                (config.name, config.data.name, model_name, attack.label), settings_hash, description
            )
            threat = methods.get(attack.method).threat
            for video, label in chosen:
                items.append(
                    Item(
                        campaign=config.name,
                        dataset=config.data.name,
                        model=model_name,
                        model_path=model_path,
                        attack=attack.label,
                        method=attack.method,
                        threat=threat,
                        params=dict(attack.params),
                        eps=attack.eps,
                        budget=attack.budget,
                        target=attack.target,
                        video=video,
                        label=label,
                        num_classes=num_classes,
                        campaign_seed=config.seed,
                        seed=item_seed(config.seed, config.data.name, model_name, attack.label, video),
                        config_hash=config.config_hash,
                        settings_hash=settings_hash,
                    )
                )
    store.set_plan(config.name, [item.key for item in items])
    return items


# ---------------------------------------------------------------------------------------------------
# One item (any process)


def _save_videos(context: WorkerContext, item: Item, clean: Tensor, adversarial: Tensor) -> str:
    """Save the adversarial video losslessly, plus clean/adversarial tensors; return its path from the db."""
    root = Path(context.video_dir)  # type: ignore[arg-type]
    relative = Path(slug(item.campaign), slug(item.dataset), slug(item.model), slug(item.attack))
    directory = root / relative
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{item.video:06d}"
    # Written under a temporary name and renamed: a killed worker never leaves a truncated file under
    # the final name (the rename is atomic on POSIX).
    partial = directory / f".{stem}.partial.npz"
    with open(partial, "wb") as handle:
        np.savez_compressed(
            handle,
            clean=to_uint8(clean[0]).cpu().numpy(),
            adversarial=adversarial[0].detach().cpu().float().numpy(),
        )
    os.replace(partial, directory / f"{stem}.npz")
    partial_mkv = directory / f".{stem}.partial.mkv"
    write_lossless(partial_mkv, adversarial[0].detach().cpu())
    os.replace(partial_mkv, directory / f"{stem}.mkv")
    written = directory / f"{stem}.mkv"
    return str(Path(root.name) / relative / written.name)


def item_row(item: Item, worker: str) -> dict[str, Any]:
    """The start of ``item``'s store row: its identity and settings, and who computed it."""
    return {
        "campaign": item.campaign, "dataset": item.dataset, "model": item.model, "attack": item.attack,
        "video": item.video, "method": item.method, "threat": item.threat, "eps": item.eps,
        "budget": item.budget, "seed": item.seed, "version": __version__, "config_hash": item.config_hash,
        "settings_hash": item.settings_hash, "label": item.label, "worker": worker,
    }  # fmt: skip


def execute_item(context: WorkerContext, item: Item, model: Any = None) -> dict[str, Any]:
    """Run one item and return its store row; an exception becomes a row with ``status = "error"``.

    ``model``: what the attack queries (default: the item's model, loaded once per process); the
    :class:`BatchedBackend` passes a handle on its shared batching proxy.
    """
    started = time.perf_counter()
    row = item_row(item, f"pid{os.getpid()}")
    try:
        model = _load_model(item.model_path, context.device) if model is None else model
        source = _open_source(context.data, model)
        row["video_id"] = source.video_id(item.video)
        videos, labels = source.load([item.video])
        label = int(labels[0])
        row["label"] = label
        target = resolve_target(
            item.target, item.campaign_seed, item.dataset, item.video, label, item.num_classes
        )
        row["target"] = target
        if target is not None and target == label:
            row.update(status="skipped", error=f"fixed target {target} is the video's true class")
        else:
            video = videos.to(context.device)
            result, record = attack_video(
                item.method,
                model,
                video,
                label,
                target=target,
                eps=item.eps,
                budget=item.budget,
                seed=item.seed,
                params=item.params,
                attacker_data=_attacker_data(context, model),
            )
            row.update(
                {
                    key: record.get(key)
                    for key in (
                        "status",
                        "clean_pred",
                        "adv_label",
                        "success",
                        "success_uint8",
                        "queries",
                        "iterations",
                        "seconds",
                        *METRIC_COLUMNS,
                    )
                }
            )
            row["record"] = record
            row["trace"] = (
                [list(point) for point in result.trace[0]] if result is not None and result.trace else []
            )
            if context.video_dir is not None and result is not None:
                row["video_path"] = _save_videos(context, item, video, result.adversarial)
    except Exception as error:  # noqa: BLE001 - one bad item must not stop the campaign
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        row.update(status="error", error=f"{type(error).__name__}: {message}".rstrip(": "))
        row["record"] = {"traceback": traceback.format_exc(limit=8)}
    row["wall_seconds"] = round(time.perf_counter() - started, 4)
    row["finished_at"] = time.time()
    return row


class BatchedBackend:
    """Run items in this process, ``batch_videos`` black-box items at a time, their model calls merged
    into shared forward passes (:func:`vidattack.batching.run_batched`), as a dynamic batcher does.

    Every black-box item goes through the executor, whatever ``batch_videos``: short forward passes are
    padded to a size the model computes exactly as a pass of ``max_batch`` rows (``pad="probe"``), so each
    row's logits do not depend on the other items and the rows are bit-identical for every
    ``batch_videos`` (but may differ, in the last float digits and so in query counts, from the default
    backend's unpadded forwards). White-box items run one at a time.
    """

    def __init__(self, batch_videos: int, *, max_batch: int = 32) -> None:
        if not isinstance(batch_videos, int) or batch_videos < 1:
            raise ValueError(f"batch_videos must be a positive integer, got {batch_videos!r}")
        self.batch_videos = batch_videos
        self.max_batch = max_batch

    def run(self, function: Any, context: WorkerContext, items: Iterable[Item]) -> Iterator[dict[str, Any]]:
        """Yield the rows of ``items`` (drawn lazily, ``batch_videos`` at a time)."""
        previous = torch.get_num_threads()
        torch.set_num_threads(1)  # the same arithmetic as the other backends
        try:
            chunk: list[Item] = []
            for item in items:
                chunk.append(item)
                if len(chunk) == self.batch_videos:
                    yield from self._run_chunk(function, context, chunk)
                    chunk = []
            if chunk:
                yield from self._run_chunk(function, context, chunk)
        finally:
            torch.set_num_threads(previous)

    def _run_chunk(self, function: Any, context: WorkerContext, chunk: list[Item]) -> Iterator[dict[str, Any]]:
        from vidattack.batching import run_batched

        by_model: dict[str, list[Item]] = {}
        for item in chunk:
            if item.threat == "white-box":
                yield function(context, item)
            else:
                by_model.setdefault(item.model_path, []).append(item)
        for path, group in by_model.items():
            jobs = [lambda handle, item=item: function(context, item, handle) for item in group]
            model = _load_model(path, context.device)
            yield from run_batched(jobs, model, max_batch=self.max_batch, concurrency=self.batch_videos)


# ---------------------------------------------------------------------------------------------------
# The run


def run_campaign(
    config: CampaignConfig,
    db: str | Path,
    *,
    workers: int = 1,
    device: str = "cpu",
    save_videos: bool = False,
    retry_errors: bool = False,
    progress: bool = True,
    backend: Backend | None = None,
    lease: float = 120.0,
    batch_videos: int | None = None,
    forward_batch: int = 32,
) -> RunSummary:
    """Run (or resume) ``config`` into the SQLite store ``db``.

    Args:
        workers: worker processes of the default :class:`LocalBackend` (1: in this process).
        device: torch device for the models (``cpu``, ``cuda:0``, ...).
        save_videos: save each adversarial video losslessly under ``video_dir_for(db)``.
        retry_errors: forget errored items first, so that they run again.
        progress: show a tqdm bar (items done / failed / ETA) on stderr.
        backend: where items run (default ``LocalBackend(workers)``, or a :class:`BatchedBackend` with
            ``batch_videos``).
        batch_videos: attack this many videos at once in this process, their queries merged into shared
            forward passes of ``forward_batch`` rows (:class:`BatchedBackend`); ``None``: one at a time.
        lease: seconds an item's claim lasts without a heartbeat (renewed every ``lease / 4`` while the
            runner lives); a runner that dies leaves its items to the next run after this, or at once
            when its process on this machine is gone.

    Returns:
        A :class:`RunSummary`.
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    summary = RunSummary()
    if backend is None:
        backend = BatchedBackend(batch_videos, max_batch=forward_batch) if batch_videos else LocalBackend(workers)
    with Store(db) as store:
        if retry_errors:
            store.delete_errors(config.name)
        items = plan_campaign(config, store, device=device, notes=summary.notes)
        done = store.done_keys(config.name)
        todo = [item for item in items if item.key not in done]
        summary.planned, summary.already_done = len(items), len(items) - len(todo)
        context = WorkerContext(
            data=config.data, device=device, video_dir=str(video_dir_for(db)) if save_videos else None,
            attacker_data=config.attacker_data, attacker_split=config.attacker_split,
        )  # fmt: skip
        bar = tqdm(total=len(todo), desc=config.name, unit="item", disable=not progress, dynamic_ncols=True)
        owner = runner_identity()
        heartbeat = _Heartbeat(Path(db), owner, lease)
        skipped: list[Item] = []

        def claimed() -> Iterator[Item]:
            # Claim each item just before a worker takes it: another runner on the same database then
            # takes the items this one has not reached, and no item is computed twice.
            for item in todo:
                if store.claim(item.key, owner, lease):
                    yield item
                else:
                    skipped.append(item)
                    bar.update(1)

        try:
            for row in backend.run(execute_item, context, claimed()):
                _store_row(store, row)
                store.release(_row_key(row), owner)
                summary.ran += 1
                summary.errors += row["status"] == "error"
                bar.set_postfix(done=summary.ran - summary.errors, failed=summary.errors, refresh=False)
                bar.update(1)
        except BrokenProcessPool:
            raise RuntimeError(
                "a worker process died (out of memory?); re-run the same command to resume"
            ) from None
        finally:
            heartbeat.stop()
            bar.close()
        if skipped:
            summary.notes.append(
                f"{len(skipped)} item(s) were claimed or finished by another runner on this database"
            )
        summary.claimed_elsewhere = len(skipped)
    summary.seconds = time.perf_counter() - started
    return summary
