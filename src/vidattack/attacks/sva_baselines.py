"""SVA's comparison points (Wei, Yan, Li, IJCV 2022): fixed key-frame baselines and SVAL.

* :func:`sva_norl` -- "No RL" (Table 5): every frame is a key frame.
* :func:`sva_random` -- random key frames, best of several draws (Fig. 7).
* :func:`sval` -- SVAL (Sec. 4.3): an agent trained offline with the sparsity-length reward (Eq. 14)
  picks the key frames once per video.

Each attacks its frame sets with :func:`vidattack.attacks.sva.attack_key_frames`, the same step as SVA.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vidattack.attacks.sva import (
    Backbone,
    Episode,
    attack_key_frames,
    better_episode,
    budget_for,
    check_common,
    episodes_result,
    key_frame_features,
    prepare_inputs,
)
from vidattack.attacks.sva_agent import KeyFrameAgent, SvalTraining, load_agent, train_sval_agent
from vidattack.result import AttackResult, TracePoint
from vidattack.threat import ScoreOracle
from vidattack.video import validate_video

__all__ = ["sva_norl", "sva_random", "sval", "sval_agent", "sval_sparsity"]


def _fixed_frames(
    oracle: ScoreOracle,
    clean: Tensor,
    labels: Tensor,
    targets: Tensor | None,
    choose: Callable[[int, int], list[Tensor]],
    start: float,
    method: str,
    shared: dict[str, Any],
    *,
    eps: float,
    population: int,
    sigma: float | None,
    step_size: float | None,
    estimator: str,
    target_videos: Tensor | None,
    tile: int = 1,
    generator: torch.Generator | None,
) -> AttackResult:
    """Attack each video with the frame sets ``choose(i, T)`` (budget split evenly); keep the best.

    Returns the :func:`_result` of the kept episodes (``start``: ``perf_counter`` at the call's start).
    """
    found, queries, iterations, traces = [], [], [], []
    for i in range(clean.shape[0]):
        first = oracle.used(i)
        trials = choose(i, clean.shape[1])
        budget = budget_for(oracle, i, targets is not None)
        best: Episode | None = None
        trace_i: list[TracePoint] = []
        for frames in trials:
            episode = attack_key_frames(
                oracle,
                clean[i],
                int(labels[i]),
                frames,
                target=None if targets is None else int(targets[i]),
                eps=eps,
                owner=i,
                max_queries=budget // len(trials),
                population=population,
                sigma=sigma,
                step_size=step_size,
                estimator=estimator,
                target_videos=target_videos,
                tile=tile,
                generator=generator,
            )
            trace_i += episode.trace
            best = better_episode(best, episode)
        assert best is not None
        found.append(best)
        queries.append(oracle.used(i) - first)
        iterations.append(len(trials))
        traces.append(trace_i)
    return episodes_result(clean, labels, targets, found, queries, iterations, traces, start, method, shared)


def sva_norl(
    oracle: ScoreOracle,
    videos: Tensor,
    label: Tensor | int | list[int],
    *,
    target: Tensor | int | list[int] | None = None,
    eps: float = 0.05,
    population: int = 48,
    sigma: float | None = None,
    step_size: float | None = None,
    estimator: str = "nes",
    target_videos: Tensor | None = None,
    tile: int = 1,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """ "No RL" (Table 5): FGSM + NES on *all* frames, one run with the whole budget (Sec. 3.1).

    Arguments as in :func:`attack_key_frames`.
    """
    start = time.perf_counter()
    clean, labels, targets = prepare_inputs(oracle, videos, label, target, "sva_norl")
    check_common(eps, population, estimator)
    return _fixed_frames(
        oracle,
        clean,
        labels,
        targets,
        lambda i, t: [torch.ones(t, dtype=torch.bool)],
        start,
        "sva-norl",
        {"eps": eps, "estimator": estimator},
        eps=eps,
        population=population,
        sigma=sigma,
        step_size=step_size,
        estimator=estimator,
        target_videos=target_videos,
        tile=tile,
        generator=generator,
    )


def sva_random(
    oracle: ScoreOracle,
    videos: Tensor,
    label: Tensor | int | list[int],
    *,
    target: Tensor | int | list[int] | None = None,
    eps: float = 0.05,
    num_frames: int | Sequence[int] = 8,
    trials: int = 5,
    population: int = 48,
    sigma: float | None = None,
    step_size: float | None = None,
    estimator: str = "nes",
    target_videos: Tensor | None = None,
    tile: int = 1,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Random key frames (Fig. 7): ``num_frames`` frames drawn uniformly, best of ``trials`` = 5 draws.

    The best draw is the successful one with the smallest MAP. The draws share the video's budget
    evenly (one oracle, one budget, as for SVA's episodes).

    Args:
        num_frames: frames per draw, one int for all videos or one per video (to match SVA's counts).
        trials: draws per video (5 in Fig. 7).
    """
    start = time.perf_counter()
    clean, labels, targets = prepare_inputs(oracle, videos, label, target, "sva_random")
    check_common(eps, population, estimator)
    n, t = clean.shape[:2]
    counts = [int(num_frames)] * n if isinstance(num_frames, int) else [int(c) for c in num_frames]
    if len(counts) != n or any(not 1 <= c <= t for c in counts):
        raise ValueError(
            f"num_frames must be in [1, {t}], one int or one per video ({n}), got {num_frames!r}"
        )
    if not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a positive int, got {trials!r}")

    def choose(i: int, frames: int) -> list[Tensor]:
        sets = []
        for _ in range(trials):
            mask = torch.zeros(frames, dtype=torch.bool)
            mask[torch.randperm(frames, generator=generator)[: counts[i]]] = True
            sets.append(mask)
        return sets

    return _fixed_frames(
        oracle,
        clean,
        labels,
        targets,
        choose,
        start,
        "sva-random",
        {"eps": eps, "trials": trials, "estimator": estimator},
        eps=eps,
        population=population,
        sigma=sigma,
        step_size=step_size,
        estimator=estimator,
        target_videos=target_videos,
        tile=tile,
        generator=generator,
    )


def sval_sparsity(sparsity: float | None, targeted: bool) -> float:
    """SVAL's S (Eq. 14): ``sparsity`` if given, else the paper's 0.2 targeted / 0.5 untargeted (Sec. 4.4)."""
    sparsity = (0.2 if targeted else 0.5) if sparsity is None else sparsity
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must lie in [0, 1), got {sparsity}")
    return float(sparsity)


def sval_agent(
    train_videos: Tensor,
    backbone: Backbone | None = None,
    *,
    sparsity: float = 0.5,
    train_epochs: int = 20,
    episodes: int = 5,
    lr: float = 1e-5,
    hidden: int = 128,
    gamma_rep: float = 2.0,
    gamma_length: float = 3.0,
    normalize_features: bool = True,
    generator: torch.Generator | None = None,
) -> SvalTraining:
    """SVAL's offline agent (Sec. 4.3), trained on the attacker's ``train_videos [M,T,C,H,W]`` in [0, 1].

    What :func:`sval` does when it is given no agent; callers that attack many videos (the methods
    layer) train it once here and pass the agent to every run, as the paper trains once. No query.
    The keywords are :func:`sval`'s (``sparsity``: S of Eq. 14, resolved by the caller).
    """
    validate_video(train_videos, "train_videos")
    return train_sval_agent(
        [key_frame_features(backbone, video, normalize_features) for video in train_videos],
        sparsity=sparsity, epochs=train_epochs, episodes=episodes, lr=lr, hidden=hidden, gamma_rep=gamma_rep,
        gamma_length=gamma_length, generator=generator,
    )  # fmt: skip


def sval(
    oracle: ScoreOracle,
    videos: Tensor,
    label: Tensor | int | list[int],
    *,
    target: Tensor | int | list[int] | None = None,
    eps: float = 0.05,
    agent: KeyFrameAgent | str | None = None,
    train_videos: Tensor | None = None,
    sparsity: float | None = None,
    backbone: Backbone | None = None,
    train_epochs: int = 20,
    episodes: int = 5,
    lr: float = 1e-5,
    hidden: int = 128,
    gamma_rep: float = 2.0,
    gamma_length: float = 3.0,
    population: int = 48,
    sigma: float | None = None,
    step_size: float | None = None,
    estimator: str = "nes",
    target_videos: Tensor | None = None,
    tile: int = 1,
    normalize_features: bool = True,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """SVAL (Sec. 4.3): an agent trained offline with the sparsity-length reward (Eq. 14) picks key frames.

    The agent is ``agent`` (a :class:`KeyFrameAgent` or a safetensors path from
    :func:`~vidattack.attacks.sva_agent.save_agent`) or, without one, trained here on ``train_videos``
    (the paper's training share of videos; training needs no query). Each attacked video's key frames
    are the ``round((1 - S) * T)`` frames of highest ``p_t`` (so S is met exactly, as in Tables 2-4),
    attacked once with the whole budget by :func:`attack_key_frames`.

    Args:
        sparsity: S of Eq. 14 (0.5 untargeted, 0.2 targeted, Sec. 4.4).
        train_epochs: 20 (Sec. 4.3); lr: 1e-5 dropping to 1e-6 after 15 epochs (Sec. 4.3).
        gamma_length: weight of Eq. 14 in place of R_attack's gamma2 = 3.

    Returns:
        :class:`AttackResult`; ``extras["sval_reward_curve"]`` when the agent was trained here.
    """
    start = time.perf_counter()
    clean, labels, targets = prepare_inputs(oracle, videos, label, target, "sval")
    check_common(eps, population, estimator)
    sparsity = sval_sparsity(sparsity, targets is not None)
    extras: dict[str, Any] = {"eps": eps, "sparsity": sparsity, "estimator": estimator}
    if isinstance(agent, (str, Path)):
        agent, _ = load_agent(agent)
    if agent is None:
        if train_videos is None:
            raise ValueError("sval needs a trained agent (agent=) or training videos (train_videos=)")
        training = sval_agent(
            train_videos, backbone, sparsity=sparsity, train_epochs=train_epochs, episodes=episodes, lr=lr,
            hidden=hidden, gamma_rep=gamma_rep, gamma_length=gamma_length,
            normalize_features=normalize_features, generator=generator,
        )  # fmt: skip
        agent = training.agent
        extras["sval_reward_curve"] = training.reward_curve
    keep = max(1, round((1 - sparsity) * clean.shape[1]))
    chosen: list[Tensor] = []
    for i in range(clean.shape[0]):
        with torch.no_grad():
            probs = agent(key_frame_features(backbone, clean[i], normalize_features))
        mask = torch.zeros(clean.shape[1], dtype=torch.bool)
        mask[probs.topk(keep).indices] = True
        chosen.append(mask)
    return _fixed_frames(
        oracle,
        clean,
        labels,
        targets,
        lambda i, t: [chosen[i]],
        start,
        "sval",
        extras,
        eps=eps,
        population=population,
        sigma=sigma,
        step_size=step_size,
        estimator=estimator,
        target_videos=target_videos,
        tile=tile,
        generator=generator,
    )
