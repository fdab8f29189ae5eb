"""``vidattack evaluate``: how robust a video classifier is under one threat model, as a worst case over a
fixed attack suite (:mod:`vidattack.evaluation.suites`), in the spirit of AutoAttack / RobustBench.

For ``n`` clips of a split (the same clips for every model: a fixed permutation of the split, first
``n``) the clean model is evaluated; misclassified clips count as not robust and are not attacked.
Every correctly classified clip is attacked by the suite's members in order (each with its own query
budget) and the suite stops at the first success at ``eps``; a clip is robust only if every member
failed. "Success at eps" is the same for every member: adversarial *and* L-inf distance <= ``eps``
(regularised white-box attacks run clipped to ``eps``; minimising label-only attacks run without it and
are judged on the distance of their result).

Robust accuracy is also given at query budgets (1e3, 3e3, 1e4, ... up to ``budget``): a clip counts as
broken at budget ``b`` when the queries of all members before the one that broke it plus that member's
queries at its success are <= ``b``. (For a minimising member the queries "at success" are all the
queries it spent, an upper bound.) The same figures are given after 8-bit rounding and after H.264
re-encoding of the breaking member's result (:func:`vidattack.methods.record.attack_video`).

Resumable: every (clip, member) attack is one committed row of a campaign store (``evaluate.sqlite`` in
the output folder); a killed evaluation re-run with the same arguments continues where it stopped and
refuses to mix results of other settings. The result is a JSON document
(``robustness.schema.json``, shipped beside this module) plus Markdown and HTML reports with plots.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vidattack import __version__, methods
from vidattack.campaign.execution import item_seed, model_fingerprint
from vidattack.campaign.store import METRIC_COLUMNS, Store, runner_identity
from vidattack.evaluation.robustness_report import write_reports
from vidattack.evaluation.suites import Member, Suite, get_suite
from vidattack.methods.attacker_data import AttackerData, AttackerDataRequired
from vidattack.methods.record import attack_video
from vidattack.methods.spec import Context, check_eps
from vidattack.naming import digest

__all__ = [
    "evaluate", "worst_case", "budget_grid", "load_schema", "write_reports", "ClipSource", "open_clips",
    "SCHEMA_ID", "DB_NAME",
]  # fmt: skip

SCHEMA_ID = "vidattack-robustness/1"
DB_NAME = "evaluate.sqlite"
#: Float slack of the L-inf check (float32 rounding of clean + delta - clean).
LINF_TOLERANCE = 1e-6
#: Clip order: a permutation of the split with this fixed seed, so every model sees the same clips.
CLIP_ORDER_SEED = 0
_CLAIM_LEASE = 3600.0
_PREDICTION_BATCH = 16


# ------------------------------------------------------------------------------------------------
# Clips


@dataclass
class ClipSource:
    """Clips addressed by index: ``load(indices) -> (videos [n,T,C,H,W] in [0, 1], labels [n])``."""

    name: str
    identity: dict[str, Any]
    size: int
    load: Callable[[Sequence[int]], tuple[Tensor, Tensor]]
    video_id: Callable[[int], str]
    labels: str = "as given"  # how the clips' labels were assigned, for the report

    def __len__(self) -> int:
        return self.size


def open_clips(data: Any, split: str, model: Any) -> ClipSource:
    """``data``: ``"synth"`` or ``"scene"`` (that test bed's ``split``), a data-set folder (class folders ``ROOT/SPLIT/CLASS``,
    UCF-101, HMDB-51 or Kinetics, at the model's clip shape, labels in the model's class order: see
    :mod:`vidattack.data.layouts`), or a ``(videos, labels)`` pair of tensors.

    Raises:
        ValueError: naming ``--data`` for a missing folder, a bad split or classes that are not the model's.
    """
    if isinstance(data, (tuple, list)):
        videos, labels = data
        if videos.ndim != 5 or len(videos) != len(labels):
            raise ValueError("data: a (videos [N,T,C,H,W], labels [N]) pair of tensors expected")
        key = digest([list(videos.shape), float(videos.double().sum()), labels.tolist()])[:12]
        return ClipSource(f"tensors-{key}", {"source": "tensors", "digest": key}, len(videos),
                          lambda idx: (videos[list(idx)], labels[list(idx)].long()), lambda i: f"tensor:{i}")  # fmt: skip
    text = str(data)
    from vidattack.data import synthetic

    if text in synthetic.DATA_NAMES:
        if split not in synthetic.SPLITS:
            raise ValueError(f"--split must be one of {', '.join(synthetic.SPLITS)} for --data {text}, got {split!r}")
        config = synthetic.SynthConfig(bed=synthetic.DATA_NAMES[text])

        def load_synth(indices: Sequence[int]) -> tuple[Tensor, Tensor]:
            clips = synthetic.generate(split, config, indices=list(indices))
            return clips.videos, clips.labels

        return ClipSource(f"{text}-{split}", {"source": "synthetic", "split": split, "config": repr(config)},
                          config.n_for(split), load_synth, lambda i: f"{text}:{split}:{i}", "the test bed's classes")  # fmt: skip
    from vidattack.data.layouts import label_order, open_folder

    root = Path(text)
    if not root.is_dir():
        raise ValueError(f"--data: no such folder: '{root}' (expected a data-set folder or 'synth')")
    frames = getattr(model, "num_frames", None) or 16
    size = getattr(model, "input_size", None) or (112, 112)
    size = (size, size) if isinstance(size, int) else tuple(size)
    model_classes = getattr(model, "class_names", None)
    try:
        dataset = open_folder(root, split, frames=int(frames), size=size, model_classes=model_classes)
    except (ValueError, FileNotFoundError) as error:
        raise ValueError(f"--data: {error}") from None

    def load_folder(indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        loaded = [dataset.load(int(i)) for i in indices]
        return torch.stack([v for v, _ in loaded]), torch.tensor([int(lab) for _, lab in loaded])

    return ClipSource(f"{root.name}-{split}", {"source": "folder", "root": str(root.resolve()), "split": split,
                      "frames": frames, "size": list(size)}, len(dataset), load_folder,
                      lambda i: str(dataset.samples[i][0]), label_order(dataset, model_classes))  # fmt: skip


def clip_order(total: int, n: int) -> list[int]:
    """The ``n`` clips evaluated: the first ``n`` of a fixed permutation of the split."""
    generator = torch.Generator().manual_seed(CLIP_ORDER_SEED)
    return torch.randperm(total, generator=generator)[: min(n, total)].tolist()


# ------------------------------------------------------------------------------------------------
# Figures


def budget_grid(budget: int | None) -> list[int]:
    """``1e3, 3e3, 1e4, 3e4, ...`` up to ``budget`` (and ``budget`` itself); ``[]`` without a budget."""
    if budget is None:
        return []
    grid: list[int] = []
    value = 1000
    while value <= budget:
        grid.append(value)
        value = value * 3 if str(value).startswith("1") else value * 10 // 3
    if not grid or grid[-1] != budget:
        grid.append(budget)
    return grid


def _succeeded(attempt: dict[str, Any], kind: str) -> bool:
    """Whether an attempt broke the clip at eps (``kind``: float, uint8 or h264)."""
    if not attempt["success_at_eps"]:
        return False
    return kind == "float" or bool(attempt.get(f"success_{kind}"))


def _first_break(sample: dict[str, Any], kind: str) -> tuple[str | None, int | None]:
    """``(member, cumulative queries)`` of the first member that broke ``sample``, or ``(None, None)``."""
    if not sample["correct"]:
        return "clean", 0
    spent = 0
    for attempt in sample["attempts"]:
        if _succeeded(attempt, kind):
            return attempt["member"], spent + int(attempt["queries"])
        spent += int(attempt["queries"])
    return None, None


def worst_case(samples: Sequence[dict[str, Any]], members: Sequence[str], budgets: Sequence[int]) -> dict[str, Any]:
    """The suite's figures from per-clip attempts (each sample: ``correct`` and its ``attempts`` in order,
    each with ``member``, ``success_at_eps``, ``success_uint8``, ``success_h264``, ``queries``).

    Returns:
        ``clean_acc``, ``robust_acc`` (+ ``_uint8``, ``_h264``), ``members`` (per member: attacked clips,
        clips it broke first, its success rate on them, robust accuracy after it, and alone -- only when it
        attacked every correctly classified clip, else ``None``) and ``budgets`` (robust accuracy at each).
        Each sample gets ``broken_by``, ``queries`` (cumulative at the break) and the same after 8-bit
        rounding (``broken_uint8``, ``queries_uint8``) and H.264 (``broken_h264``, ``queries_h264``).
    """
    n = len(samples)
    share = (lambda count: count / n) if n else (lambda count: 0.0)
    firsts = {kind: [_first_break(s, kind) for s in samples] for kind in ("float", "uint8", "h264")}
    out: dict[str, Any] = {
        "clean_acc": share(sum(s["correct"] for s in samples)),
        **{f"robust_acc{suffix}": share(sum(member is None for member, _ in firsts[kind]))
           for kind, suffix in (("float", ""), ("uint8", "_uint8"), ("h264", "_h264"))},
    }  # fmt: skip
    correct = [s for s in samples if s["correct"]]
    broken_so_far = n - len(correct)
    rows = []
    for label in members:
        attempts = [a for s in correct for a in s["attempts"] if a["member"] == label]
        first = sum(member == label for member, _ in firsts["float"])
        broken_so_far += first
        successes = [a for a in attempts if a["success_at_eps"]]
        alone = None
        if len(attempts) == len(correct):
            alone = share(len(correct) - len(successes))
        rows.append({
            "member": label,
            "attacked": len(attempts),
            "broken_first": first,
            "success_rate": len(successes) / len(attempts) if attempts else None,
            "robust_acc_after": share(n - broken_so_far),
            "robust_acc_alone": alone,
            "mean_queries_success": (sum(int(a["queries"]) for a in successes) / len(successes)) if successes else None,
        })  # fmt: skip
    out["members"] = rows
    out["budgets"] = [
        {"queries": int(b), **{f"robust_acc{suffix}": share(sum(q is None or q > b for _, q in firsts[kind]))
                               for kind, suffix in (("float", ""), ("uint8", "_uint8"), ("h264", "_h264"))}}
        for b in budgets
    ]  # fmt: skip
    for sample, (member, queries), (member8, queries8), (member264, queries264) in zip(
        samples, firsts["float"], firsts["uint8"], firsts["h264"], strict=True
    ):
        sample.update(broken_by=member, queries=queries, broken_uint8=member8 is not None, queries_uint8=queries8,
                      broken_h264=member264 is not None, queries_h264=queries264)  # fmt: skip
    return out


# ------------------------------------------------------------------------------------------------
# Running


def _clean_json(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become ``None``, tuples lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    return value


def _attempt(member: Member, record: dict[str, Any], eps: float) -> dict[str, Any]:
    """One member's attempt on one clip, from its stored record."""
    linf = record.get("linf")
    within = linf is not None and math.isfinite(linf) and linf <= eps + LINF_TOLERANCE
    extras = record.get("extras") or {}
    return _clean_json({
        "member": member.label,
        "method": member.method,
        "success": bool(record.get("success")),
        "success_at_eps": bool(record.get("success")) and within,
        "success_uint8": bool(record.get("success_uint8")),
        "success_h264": bool(record.get("success_h264")),
        "adv_label": record.get("adv_label"),
        "queries": int(record.get("queries") or 0),
        "iterations": int(record.get("iterations") or 0),
        "seconds": record.get("seconds"),
        "stop_reason": extras.get("stop_reason"),
        **{name: record.get(name) for name in METRIC_COLUMNS},
    })  # fmt: skip


def _attacker_data_problems(suite: Suite, eps: float, shape: tuple[int, ...]) -> list[str]:
    """Members that would raise :class:`AttackerDataRequired` without attacker data (checked with an empty
    context, before any query)."""
    problems = []
    for member in suite.members:
        spec = methods.get(member.method)
        if spec.supply is None:
            continue
        params = dict(member.params(eps))
        own = {param.name: param for param in spec.method_params}
        values = {name: param.default for name, param in own.items()} | {k: v for k, v in params.items() if k in own}
        core = {**spec.preset.values, **{k: v for k, v in params.items() if k not in own}}
        context = Context(spec.name, None, torch.zeros(1, *shape), torch.zeros(1, dtype=torch.long), None,
                          torch.Generator().manual_seed(0), None, values, core)  # fmt: skip
        try:
            spec.supply(context)
        except AttackerDataRequired as error:
            problems.append(f"{member.label}: {error}")
    return problems


def _load_model(model: Any, device: str) -> tuple[Any, str]:
    if isinstance(model, str):
        from vidattack import models

        loaded = models.load(model, device=device)
        if isinstance(loaded, torch.nn.Module):
            loaded.eval()
        return loaded, model
    if isinstance(model, torch.nn.Module):
        model.eval()
    return model, getattr(model, "name", None) or type(model).__name__


def _resolve_attacker_data(attacker_data: Any, model: Any, net: Any) -> AttackerData | None:
    if attacker_data is None:
        from vidattack.methods.model_refs import is_zoo_model

        # the zoo's models were trained on the synthetic test bed: its training split is the attacker's
        if isinstance(model, str) and is_zoo_model(model):
            return methods.SyntheticAttackerData.for_model(model, "train")
        return None
    if isinstance(attacker_data, (str, Path)):
        return methods.open_attacker_data(attacker_data, split="train", model_classes=getattr(net, "class_names", None))
    return attacker_data


def _check_out(out: str | Path) -> Path:
    # checked before any work, created only once the model and the data have opened (a bad --model or
    # --data leaves no empty folder behind)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: '{out}' exists and is not a directory")
    return out


def evaluate(
    model: Any,
    data: Any,
    threat: str,
    *,
    out: str | Path,
    eps: float = 0.05,
    budget: int | None = 10_000,
    n: int = 100,
    split: str = "test",
    attacker_data: Any = None,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int = 64,
    stop_at_first_success: bool = True,
    suite: Suite | None = None,
    progress: bool = True,
    reports: bool = True,
    on_clip: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Evaluate ``model``'s robustness under ``threat``; write ``robustness.json`` (and reports) into ``out``.

    Args:
        model: a zoo name, a checkpoint path, an ``http(s)://`` model service (scores / labels only), or
            a loaded model (``[N,T,C,H,W] -> [N,K]`` logits).
        data: ``"synth"``, a data-set folder, or a ``(videos, labels)`` pair of tensors.
        threat: ``"white-box"``, ``"scores"`` or ``"labels"``.
        out: output folder (created; an existing file is refused). Holds the store, so re-running the
            same evaluation into it resumes.
        eps: L-inf bound in [0, 1] units.
        budget: queries per member per clip (black-box threats; ignored for white-box).
        n: clips evaluated (the first ``n`` of a fixed permutation of the split).
        attacker_data: the attacker's own videos (folder, ``.npz``, ``"synth"`` or an
            :class:`~vidattack.methods.AttackerData`); default: the synthetic test bed for zoo models,
            else none (members that need it then fail before any query, naming ``--attacker-data``).
        seed: the evaluation's seed; each (clip, member) attack gets a seed derived from it.
        stop_at_first_success: ``False`` runs every member on every clip (each member's robust accuracy
            alone is then known; the worst case is the same).
        suite: override the threat's suite (tests, experiments).
        on_clip: called with each finished clip's sample (progress hooks, tests).

    Returns:
        The result document (see ``robustness.schema.json``).
    """
    started = time.perf_counter()
    suite = suite or get_suite(threat)
    if suite.threat != threat:
        raise ValueError(f"suite {suite.name} is for threat {suite.threat!r}, not {threat!r}")
    check_eps(eps)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"--n must be a positive integer, got {n!r}")
    black_box = threat != "white-box"
    if black_box and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 1):
        raise ValueError(f"--budget must be a positive integer for the {threat} threat, got {budget!r}")
    budget = budget if black_box else None
    out = _check_out(out)
    net, model_name = _load_model(model, device)
    if not black_box and getattr(net, "black_box_only", False):
        raise ValueError("--threat white-box needs gradients and this model is black-box only (a remote "
                         "service); use --threat scores or labels")  # fmt: skip
    attacker = _resolve_attacker_data(attacker_data, model, net)
    source = open_clips(data, split, net)
    order = clip_order(len(source), n)
    if not order:
        raise ValueError(f"--data: {source.name} holds no clips")
    shape = tuple(source.load([order[0]])[0].shape[1:])
    if attacker is None:
        problems = _attacker_data_problems(suite, eps, shape)
        if problems:
            raise ValueError("--attacker-data is required by suite member(s) " + "; ".join(problems))
    fingerprint = model_fingerprint(net)
    out.mkdir(parents=True, exist_ok=True)
    campaign = f"evaluate-{threat}"
    member_params = {m.label: _clean_json(dict(m.params(eps))) for m in suite.members}
    notes: list[str] = []
    from tqdm.auto import tqdm

    with Store(out / DB_NAME) as store:
        store.register_campaign(campaign, digest([suite.name, suite.version])[:16], "", "")
        settings = {}
        for member in suite.members:
            identity = {"suite": suite.name, "version": suite.version, "method": member.method,
                        "params": member_params[member.label], "eps": eps, "budget": budget, "seed": seed,
                        "model": fingerprint, "data": source.identity, "all": not stop_at_first_success}  # fmt: skip
            settings[member.label] = digest(identity)[:16]
            store.check_settings((campaign, source.name, model_name, member.label), settings[member.label],
                                 json.dumps(identity, sort_keys=True, default=str))  # fmt: skip
        predictions = _clean_predictions(store, source, net, order, fingerprint, device)
        done = {(row["attack"], int(row["video"])): row for row in store.rows(campaign)
                if row["dataset"] == source.name and row["model"] == model_name and row["status"] != "error"}  # fmt: skip
        owner = runner_identity()
        samples: list[dict[str, Any]] = []
        robust_so_far = 0
        bar = tqdm(total=len(order), desc=f"evaluate {threat}", unit="clip", disable=not progress,
                   dynamic_ncols=True)  # fmt: skip
        try:
            for index in order:
                label, prediction = predictions[index]
                sample = {"clip": index, "clip_id": source.video_id(index), "label": label,
                          "prediction": prediction, "correct": label == prediction, "attempts": []}  # fmt: skip
                if sample["correct"]:
                    claim_key = (campaign, source.name, model_name, "*clip*", index)
                    if not store.claim(claim_key, owner, _CLAIM_LEASE):
                        notes.append(f"clip {index} is being evaluated by another runner on {out / DB_NAME}")
                        sample["pending"] = True
                    else:
                        try:
                            _attack_clip(store, sample, suite, done, net, source, index, eps=eps, budget=budget,
                                         seed=seed, batch_size=batch_size, attacker=attacker,
                                         stop=stop_at_first_success, threat=threat, campaign=campaign,
                                         model_name=model_name, settings=settings, owner=owner,
                                         member_params=member_params, device=device)  # fmt: skip
                        finally:
                            store.release(claim_key, owner)
                samples.append(sample)
                robust_so_far += sample["correct"] and not any(a["success_at_eps"] for a in sample["attempts"])
                bar.set_postfix(robust=f"{robust_so_far}/{len(samples)}", refresh=False)
                bar.update(1)
                if on_clip is not None:
                    on_clip(sample)
        finally:
            bar.close()
    pending = [s for s in samples if s.get("pending")]
    figures = worst_case(samples, [m.label for m in suite.members], budget_grid(budget))
    for sample in samples:
        sample["distortion"] = _distortion(sample)
        sample.pop("pending", None)
    document = _clean_json({
        "schema": SCHEMA_ID,
        "vidattack_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "complete": not pending,
        "model": {"name": model_name, "fingerprint": fingerprint},
        "data": {"name": source.name, "split": split, "identity": source.identity, "labels": source.labels},
        "threat": threat,
        "norm": "linf",
        "eps": eps,
        "budget": budget,
        "budget_scope": "per member per clip" if black_box else None,
        "n": len(samples),
        "seed": seed,
        "attacker_data": None if attacker is None else attacker.description,
        "suite": {"name": suite.name, "version": suite.version, "stop_at_first_success": stop_at_first_success,
                  "members": [{"label": m.label, "method": m.method, "kind": methods.get(m.method).kind,
                               "params": member_params[m.label], "why": m.why} for m in suite.members]},
        **figures,
        "samples": samples,
        "wall_seconds": round(time.perf_counter() - started, 3),
        "attack_seconds": round(sum(a.get("seconds") or 0.0 for s in samples for a in s["attempts"]), 3),
        "notes": notes,
    })  # fmt: skip
    (out / "robustness.json").write_text(json.dumps(document, indent=1), encoding="utf-8")
    if reports:
        write_reports(document, out)
    return document


def _clean_predictions(
    store: Store, source: ClipSource, net: Any, order: list[int], fingerprint: str, device: str
) -> dict[int, tuple[int, int]]:
    """``{clip: (label, prediction)}`` of the evaluated clips (cached in the store: evaluated once)."""
    source_key = digest(source.identity)[:16]
    cached = store.predictions(source_key, fingerprint)
    missing = [i for i in order if i not in cached]
    for start in range(0, len(missing), _PREDICTION_BATCH):
        batch = missing[start : start + _PREDICTION_BATCH]
        videos, labels = source.load(batch)
        with torch.no_grad():
            preds = net(videos.to(device)).argmax(1).cpu()
        entries = [(i, int(lab), int(p)) for i, lab, p in zip(batch, labels, preds, strict=True)]
        store.add_predictions(source_key, fingerprint, entries)
        cached.update({i: (lab, p) for i, lab, p in entries})
    return cached


def _attack_clip(store: Store, sample: dict[str, Any], suite: Suite, done: dict, net: Any, source: ClipSource,
                 index: int, *, eps: float, budget: int | None, seed: int, batch_size: int,
                 attacker: AttackerData | None, stop: bool, threat: str, campaign: str, model_name: str,
                 settings: dict[str, str], owner: str, member_params: dict, device: str) -> None:  # fmt: skip
    """Run the suite's members on one clip in order (reusing stored rows), filling ``sample["attempts"]``."""
    video = None
    for member in suite.members:
        row = done.get((member.label, index))
        if row is not None:
            record = json.loads(row["record"])
        else:
            if video is None:
                video = source.load([index])[0].to(device)
            store.renew_claims(owner, _CLAIM_LEASE)
            spec = methods.get(member.method)
            member_seed = item_seed(seed, source.name, model_name, member.label, index)
            clock = time.perf_counter()
            result, record = attack_video(
                member.method, net, video, sample["label"], eps=eps if spec.kind == "bounded" else None,
                budget=budget, seed=member_seed, params=dict(member.params(eps)), batch_size=batch_size,
                attacker_data=attacker,
            )  # fmt: skip
            row = {
                "campaign": campaign, "dataset": source.name, "model": model_name, "attack": member.label,
                "video": index, "video_id": sample["clip_id"], "method": member.method, "threat": threat,
                **{key: record.get(key) for key in ("status", "label", "target", "clean_pred", "adv_label", "success",
                                                    "success_uint8", "queries", "iterations", "seconds",
                                                    *METRIC_COLUMNS)},
                "eps": eps, "budget": budget, "seed": member_seed, "version": __version__,
                "settings_hash": settings[member.label], "record": _clean_json(record),
                "trace": [list(p) for p in result.trace[0]] if result is not None and result.trace else [],
                "wall_seconds": round(time.perf_counter() - clock, 4), "worker": owner, "finished_at": time.time(),
            }  # fmt: skip
            store.insert_result(_clean_json(row))
        attempt = _attempt(member, record, eps)
        sample["attempts"].append(attempt)
        if stop and attempt["success_at_eps"]:
            return


def _distortion(sample: dict[str, Any]) -> dict[str, Any] | None:
    """The perturbation metrics of the attempt that broke the clip (``None`` when robust or clean)."""
    broken_by = sample.get("broken_by")
    for attempt in sample["attempts"]:
        if attempt["member"] == broken_by:
            return {name: attempt.get(name) for name in METRIC_COLUMNS}
    return None


def load_schema() -> dict[str, Any]:
    """The JSON Schema of the result document (``robustness.schema.json``)."""
    text = resources.files("vidattack.evaluation").joinpath("robustness.schema.json").read_text(encoding="utf-8")
    return json.loads(text)
