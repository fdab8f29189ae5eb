"""Attack one video and turn the outcome into a flat record: shared by the CLI and campaigns.

The record is what users read (``--json``, campaign rows): identifiers, the clean prediction, success,
queries, iterations, time and every perturbation metric. Three honesty rules live here once:

* an untargeted attack on a video the model already misclassifies is not run and not counted as a
  success (``status = "clean-misclassified"``);
* the adversarial video is also checked after rounding to 8-bit frames (what a saved video file holds):
  ``success_uint8`` says whether it stays adversarial once written to disk;
* and after H.264 compression at libx264's default quality (``success_h264``, with the clean video's
  prediction after the same compression in ``clean_h264_pred``): whether it survives re-encoding.

These checks call the model directly (evaluation, not attack queries): a remote service sees them
as 4 extra clips per attacked video (the clean prediction, the 8-bit copy, the two H.264 copies).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor

from vidattack import __version__, methods, metrics
from vidattack.forward_count import counting_clips
from vidattack.io import h264_round_trip
from vidattack.methods import AttackerData
from vidattack.methods.spec import bound_used
from vidattack.result import AttackResult, is_adversarial
from vidattack.video import to_float, to_uint8, validate_video

__all__ = ["attack_video", "clean_prediction", "scalar_extras", "H264_CRF"]

# libx264's default quality: what an upload re-encoded with default settings goes through.
H264_CRF = 23


def clean_prediction(model: Callable[[Tensor], Tensor], video: Tensor) -> tuple[int, int]:
    """``(predicted class, number of classes)`` of one video ``[1,T,C,H,W]`` (not an oracle query)."""
    if isinstance(model, torch.nn.Module):
        model.eval()
    with torch.no_grad():
        logits = model(video)
    return int(logits.argmax(1)[0]), int(logits.shape[1])


def scalar_extras(extras: dict[str, Any]) -> dict[str, Any]:
    """The JSON-friendly scalars of an attack's extras (tensors of one element become numbers)."""
    flat: dict[str, Any] = {}
    for key, value in extras.items():
        if isinstance(value, Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, (bool, int, float, str)) or value is None:
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            flat[key] = value
    return flat


def attack_video(
    method: str,
    model: Callable[[Tensor], Tensor],
    video: Tensor,
    label: int,
    *,
    target: int | None = None,
    eps: float | None = None,
    budget: int | None = None,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    batch_size: int = 64,
    attacker_data: AttackerData | None = None,
    on_clips: Callable[[int], None] | None = None,
) -> tuple[AttackResult | None, dict[str, Any]]:
    """Run ``method`` on one ``video [1,T,C,H,W]`` with true ``label``; return the result and its record.

    ``attacker_data`` is passed to the method (see :func:`vidattack.methods.run`); the record names it.
    ``on_clips(n)`` is told of every ``n`` clips the attack runs through ``model`` (a progress bar's
    update: for a black-box method, its queries; see :func:`vidattack.forward_count.counting_clips`);
    the clean and post-attack checks are not counted.

    Raises:
        ValueError: bad video, label or target (naming the argument), unknown method or parameter.
    """
    validate_video(video, "video")
    spec = methods.get(method)  # unknown methods fail before any work
    if video.shape[0] != 1:
        raise ValueError(f"video must hold exactly one clip ([1,T,C,H,W]), got N={video.shape[0]}")
    clean_pred, classes = clean_prediction(model, video)
    if not 0 <= label < classes:
        raise ValueError(f"label must be in [0, {classes - 1}] for this model, got {label}")
    if target is not None and not 0 <= target < classes:
        raise ValueError(f"target must be in [0, {classes - 1}] for this model, got {target}")
    if target is not None and target == label:
        raise ValueError(f"target must differ from the true label ({label})")
    record: dict[str, Any] = {
        "method": method,
        "label": label,
        "clean_pred": clean_pred,
        "target": target,
        "eps": bound_used(spec, eps),  # the bound in force, also when the method's default
        "budget": budget,
        "seed": seed,
        "attacker_data": None if attacker_data is None else attacker_data.description,
        "version": __version__,
    }
    if target is None and clean_pred != label:
        record.update(status="clean-misclassified", success=False, adv_label=clean_pred, queries=0,
                      iterations=0, seconds=0.0)
        return None, record
    label_tensor = torch.tensor([label])
    target_tensor = None if target is None else torch.tensor([target])
    counting = nullcontext(model) if on_clips is None else counting_clips(model, on_clips)
    with counting as counted:
        result = methods.run(method, counted, video, label_tensor, target=target_tensor, eps=eps, budget=budget,
                             seed=seed, batch_size=batch_size, params=params, attacker_data=attacker_data)
    summary = {key: float(value[0]) for key, value in metrics.summarize(video, result.adversarial).items()}
    region = result.extras[0].get("mask")
    if isinstance(region, Tensor):
        # MAP* is defined on the region the attack was allowed to perturb (Heuristic Sec. 5.1), when known.
        summary["map_star"] = float(metrics.map_star_255(video, result.adversarial, region.to(video.device))[0])
    stored = to_float(to_uint8(result.adversarial))
    # What a video platform would show the model after re-encoding the upload (and the clean video
    # after the same, since lossy compression alone can change a prediction on small clips).
    compressed = h264_round_trip(torch.cat([video, result.adversarial]).cpu(), crf=H264_CRF).to(video.device)
    with torch.no_grad():  # one evaluation call: [8-bit adversarial, H.264 clean, H.264 adversarial]
        stored_pred, clean_h264_pred, h264_pred = model(torch.cat([stored, compressed])).argmax(1)
    record.update(
        status="success" if bool(result.success[0]) else "failure",
        success=bool(result.success[0]),
        # "Still succeeds": a failed attack (e.g. adversarial but above its MAP target, or a video that
        # compression alone flips) is never counted as a success after rounding or compression.
        success_uint8=bool(result.success[0]) and bool(is_adversarial(stored_pred.view(1), label_tensor, target_tensor)[0]),
        success_h264=bool(result.success[0]) and bool(is_adversarial(h264_pred.view(1), label_tensor, target_tensor)[0]),
        clean_h264_pred=int(clean_h264_pred),
        adv_label=int(result.adv_label[0]),
        queries=int(result.queries[0]),
        iterations=int(result.iterations[0]),
        seconds=round(result.seconds, 4),
        **summary,
        extras=scalar_extras(result.extras[0]),
    )
    distortion = result.extras[0].get("distortion_trace")
    if distortion is not None:
        # Kept in the record (and so in a campaign's store) for distortion-vs-queries curves; an empty
        # trace (nothing adversarial found) still counts the video in the median.
        record["distortion_trace"] = [[float(value) for value in point] for point in distortion]
    return result, record
