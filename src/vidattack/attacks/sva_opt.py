"""SVA_opt: SVA's RL key-frame agent as the frame selection of the Heuristic attack (Wei, Yan, Li, IJCV
2022, Sec. 4.5.3 "Effect of keyframe selection", Fig. 8).

What the paper says (Sec. 4.5.3): "we also extend our keyframe selection module to the
Heuristic-attack [40] algorithm to replace its frame selection part. The new algorithm (SVA_opt) and
the Heuristic-attack algorithm (H_opt) have the same parameter settings, they are only different in
keyframe selection." Untargeted, C3D, HMDB-51 and UCF-101; Fig. 8 compares FR, Q, MAP and S (Sec. 4.2).
Nothing more is given; the choices below are ours.

The algorithm. :func:`vidattack.attacks.heuristic.heuristic` (H_opt: saliency mask, initial directions
from other-class clips, Opt-attack's updates restricted to the mask) runs unchanged except that its
Alg. 1 (greedy frame removal ranked by top-1 probabilities) is replaced by :class:`AgentFrameSelector`:

* the agent (:mod:`vidattack.attacks.sva_agent`: BiLSTM over the attacker's per-frame features,
  ``a_t ~ Bernoulli(p_t)``, Eq. 3-4) proposes ``episodes`` key-frame sets per epoch;
* an episode "attacks" its key frames the way the Heuristic attack judges a frame set (Alg. 1 judges
  a removal by ``MAP(g(theta) theta)``): every candidate's perturbation restricted to the spatial
  region and the key frames gives a direction, its boundary distance ``g`` is found by label queries
  (:func:`~vidattack.attacks.decision_boundary.initial_directions`), and the best candidate's MAP at
  the boundary is the episode's perturbation P. Success = some candidate's direction crosses the
  boundary;
* R_attack is Eq. 8 on (P, the episode's queries, success), with R_rep and R_div (Eq. 5-7) summed as in
  Eq. 9; REINFORCE with a moving-average baseline updates the agent after each epoch (Eq. 10-11);
* the key frames handed to the optimisation are those of the successful episode with the smallest P
  (all frames when no episode crossed), as SVA keeps its best episode.

Every query (the agent's episodes included) is charged to the video's one budget. Threat: both papers
assume the top-1 class and its probability (SVA Sec. 3, Heuristic "Problem Definition"); SVA_opt reads
only top-1 labels (the agent's rewards come from boundary distances, Opt-attack is label-only), so it
runs on a :class:`~vidattack.threat.LabelOracle` -- a weaker attacker than H_opt, which needs the
probabilities for Alg. 1.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vidattack.attacks.decision_boundary import RaySearch, initial_directions, map_255_along
from vidattack.attacks.heuristic import HeuristicOracles, _split_oracles, heuristic
from vidattack.attacks.sva import Backbone, key_frame_features
from vidattack.attacks.sva_agent import (
    KeyFrameAgent,
    attack_reward,
    learn_by_episodes,
    load_agent,
    new_agent,
    total_reward,
)
from vidattack.result import AttackResult
from vidattack.threat import LabelOracle, QueryBudgetExceeded, ScoreOracle

__all__ = ["sva_opt", "AgentFrameSelector"]

#: Eq. 8's normaliser of P (SVA's eps_adv = 0.05, Sec. 3.4), in [0, 1] pixel units.
REWARD_SCALE = 0.05


@dataclasses.dataclass
class AgentFrameSelector:
    """SVA's key-frame agent as a :data:`~vidattack.attacks.heuristic.FrameSelector` (see module docstring).

    Attributes:
        used: the video's query count (``used(owner)``), read from the oracle.
        selection_queries: queries the episodes of one video may spend (checked before each episode;
            ``None``: until the epochs end or the budget refuses).
        records: per video index, what the agent did (the extras of :func:`sva_opt`).
    """

    used: Callable[[int], int]
    backbone: Backbone | None = None
    agent: KeyFrameAgent | None = None
    epochs: int = 20
    episodes: int = 5
    lr: float = 1e-5
    hidden: int = 128
    gamma_rep: float = 2.0
    gamma_attack: float = 3.0
    reward_terms: tuple[str, ...] = ("div", "rep", "attack")
    selection_queries: int | None = None
    tolerance: float = 1e-5
    rtol: float = 1e-3
    normalize_features: bool = True
    generator: torch.Generator | None = None
    records: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def _episode(
        self, search: RaySearch, candidates: Tensor, region: Tensor, frames: Tensor
    ) -> tuple[bool, float]:
        """(an adversarial direction exists, MAP 0-255 at the best candidate's boundary) for ``frames``."""
        if not bool(frames.any()):
            return False, math.inf  # nothing to perturb: no query (as SVA's empty episodes)
        mask = region * frames.reshape(-1, 1, 1, 1).to(region)
        thetas, dist, _ = initial_directions(
            search, candidates, tolerance=self.tolerance, rtol=self.rtol, mask=mask
        )
        if not bool(torch.isfinite(dist).any()):
            return False, math.inf
        best = int(dist.argmin())
        return True, float(map_255_along(search.clean, thetas[best : best + 1], dist[best : best + 1])[0])

    def __call__(self, search: RaySearch, candidates: Tensor, region: Tensor, owner: int) -> Tensor:
        clean = search.clean
        num_frames = clean.shape[0]
        features = key_frame_features(self.backbone, clean, self.normalize_features)
        policy = (
            copy.deepcopy(self.agent)
            if self.agent is not None
            else new_agent(features.shape[1], self.hidden, self.generator)
        )
        start = self.used(owner)
        cap = self.selection_queries
        # Eq. 8's thresholds scale with an episode's share, as in SVA (hard = share, soft = half of it)
        hard = math.inf if cap is None else cap / (self.epochs * self.episodes)
        best: tuple[bool, float, Tensor] | None = None
        successes: list[bool] = []
        maps: list[float] = []
        stop = "epochs"

        def play(action: Tensor) -> float | None:
            nonlocal best, stop
            if cap is not None and self.used(owner) - start >= cap:
                stop = "selection-queries"
                return None
            before = self.used(owner)
            try:
                success, value = self._episode(search, candidates, region, action)
            except QueryBudgetExceeded:
                stop = "budget"
                return None
            r_attack = attack_reward(
                value / 255.0 if success else 0.0, self.used(owner) - before, success, query_soft=hard / 2,
                query_hard=hard, scale=REWARD_SCALE,
            )  # fmt: skip
            successes.append(success)
            maps.append(value)
            # success first, then the smaller MAP (SVA's better_episode rule)
            if best is None or (success, -value) > (best[0], -best[1]):
                best = (success, value, action.clone())
            return total_reward(
                features, action, r_attack, gamma_rep=self.gamma_rep, gamma_attack=self.gamma_attack,
                terms=self.reward_terms,
            )  # fmt: skip

        all_rewards = learn_by_episodes(
            policy, features, play, epochs=self.epochs, episodes=self.episodes, lr=self.lr, generator=self.generator
        )
        curve = [sum(rewards) / len(rewards) for rewards in all_rewards]
        if best is not None and best[0]:
            frames, how = best[2], "agent"
        else:
            frames, how = torch.ones(num_frames, dtype=torch.bool), "all frames (no episode crossed)"
        with torch.no_grad():
            final_probs = policy(features).tolist()
        self.records[owner] = {
            "key_frames": frames.clone(),
            "num_key_frames": int(frames.sum()),
            "key_frame_source": how,
            "selection_stop": stop,
            "reward_curve": curve,
            "episode_rewards": all_rewards,
            "episode_success": successes,
            "episode_maps": maps,
            "frame_probs": final_probs,
        }
        return frames


def sva_opt(
    oracle: HeuristicOracles | ScoreOracle | LabelOracle,
    videos: Tensor,
    label: Tensor | int | list[int],
    init_videos: Tensor | None = None,
    init_labels: Tensor | None = None,
    *,
    target: Tensor | int | list[int] | None = None,
    backbone: Backbone | None = None,
    agent: KeyFrameAgent | str | None = None,
    epochs: int = 20,
    episodes: int = 5,
    lr: float = 1e-5,
    hidden: int = 128,
    gamma_rep: float = 2.0,
    gamma_attack: float = 3.0,
    reward_terms: tuple[str, ...] = ("div", "rep", "attack"),
    selection_queries: int | None = None,
    normalize_features: bool = True,
    spatial: bool = True,
    phi: float | None = None,
    map_target: float | None = None,
    num_init: int = 10,
    samples: int = 20,
    beta: float = 0.005,
    eta: float = 0.2,
    min_beta: float = 1e-4,
    ratio: float = 0.01,
    tolerance: float = 1e-5,
    init_rtol: float = 1e-3,
    max_iterations: int = 100_000,
    converge: bool = False,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """SVA_opt (SVA paper Sec. 4.5.3, Fig. 8): the Heuristic attack with SVA's agent choosing the frames.

    ``videos [N,T,C,H,W]`` in [0, 1]. The agent learns per video while its episodes query the model
    (module docstring); its best key-frame set becomes the temporal mask of
    :func:`~vidattack.attacks.heuristic.heuristic`, whose other settings are H_opt's.

    Args:
        oracle: a :class:`LabelOracle` suffices (labels only); the Heuristic attack's oracle pair or a
            ``ScoreOracle`` also work. Its per-video budget covers every query, the agent's included.
        init_videos, init_labels: candidate clips for the initial directions (as the Heuristic attack).
        backbone, agent, epochs, episodes, lr, hidden, gamma_rep, gamma_attack, reward_terms,
        normalize_features: the agent and its learning, as in :func:`vidattack.attacks.sva.sva` (paper
            defaults: 20 epochs x 5 episodes, lr 1e-5, Eq. 9's weights 2 and 3).
        selection_queries: queries the agent's episodes may spend per video (``None``: no cap but the
            epochs and the budget); an episode is one lock-step boundary search over the candidates.
        spatial, phi, map_target, num_init, samples, beta, eta, min_beta, ratio, tolerance, init_rtol,
        max_iterations, converge: the Heuristic attack's (H_opt's) settings.
        generator: all randomness (agent initialisation, Bernoulli draws, candidates, directions).

    Returns:
        The Heuristic attack's :class:`AttackResult` (``method = "sva-opt"``) whose extras add, per
        video: ``key_frames`` (``bool [T]`` the mask handed to the optimisation), ``num_key_frames``,
        ``key_frame_source``, ``selection_stop``, ``reward_curve``, ``episode_rewards``,
        ``episode_success``, ``episode_maps`` (0-255) and ``frame_probs``; ``selector_queries`` counts
        the agent's queries.
    """
    if target is not None:
        # Fig. 8 is untargeted; a targeted episode would need target-class boundaries (not in the paper)
        raise ValueError("sva_opt is untargeted (SVA paper Sec. 4.5.3, Fig. 8)")
    if not isinstance(epochs, int) or epochs < 1 or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"epochs and episodes must be positive ints, got {epochs!r}, {episodes!r}")
    if isinstance(agent, (str, Path)):
        agent, _ = load_agent(agent)
    selector = AgentFrameSelector(
        used=_split_oracles(oracle, False).used,
        backbone=backbone,
        agent=agent,
        epochs=epochs,
        episodes=episodes,
        lr=lr,
        hidden=hidden,
        gamma_rep=gamma_rep,
        gamma_attack=gamma_attack,
        reward_terms=tuple(reward_terms),
        selection_queries=selection_queries,
        tolerance=tolerance,
        rtol=init_rtol,
        normalize_features=normalize_features,
        generator=generator,
    )
    result = heuristic(
        oracle, videos, label, init_videos, init_labels,
        spatial=spatial, phi=phi, map_target=map_target, num_init=num_init, samples=samples, beta=beta,
        eta=eta, min_beta=min_beta, ratio=ratio, tolerance=tolerance, init_rtol=init_rtol,
        max_iterations=max_iterations, converge=converge, frame_selector=selector, generator=generator,
    )  # fmt: skip
    for i, extras in enumerate(result.extras):
        extras.update(selector.records.get(i, {"num_key_frames": 0, "key_frame_source": "not run"}))
        extras["lr"] = lr
    return dataclasses.replace(result, method="sva-opt")
