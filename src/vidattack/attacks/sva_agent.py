"""SVA's key-frame agent, its rewards and its policy learning (Wei, Yan, Li, IJCV 2022, Sec. 3.2).

* :class:`KeyFrameAgent` -- per-frame visual features ``{v_t}`` -> bidirectional LSTM (hidden 128)
  -> fully connected layer -> sigmoid: a selection probability ``p_t`` per frame (Eq. 3); key frames
  are sampled ``a_t ~ Bernoulli(p_t)`` (Eq. 4, :func:`sample_actions`).
* Rewards: representativeness :func:`representativeness_reward` (Eq. 5), diversity
  :func:`diversity_reward` (Eq. 6-7), the attack feedback :func:`attack_reward` (Eq. 8), their sum
  :func:`total_reward` (Eq. 9, gamma1 = 2, gamma2 = 3), and SVAL's sparsity-length term
  :func:`length_penalty` (Eq. 14).
* :func:`reinforce_update` -- REINFORCE over N episodes with a moving-average baseline (Eq. 10-11).
* :func:`train_sval_agent` -- SVAL's offline agent training on a training share of videos (Sec. 4.3).
* :func:`save_agent` / :func:`load_agent` -- safetensors checkpoints (weights + JSON metadata).

The agent sees frames only through the attacker's *own* image backbone (:func:`frame_features`), never
through the attacked model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = [
    "KeyFrameAgent",
    "MovingAverageBaseline",
    "sample_actions",
    "frame_features",
    "representativeness_reward",
    "diversity_reward",
    "attack_reward",
    "total_reward",
    "length_penalty",
    "reinforce_update",
    "learn_by_episodes",
    "train_sval_agent",
    "SvalTraining",
    "save_agent",
    "load_agent",
    "new_agent",
]

#: The reward terms of Eq. 9 (``"attack"`` is R_attack; SVAL swaps it for Eq. 14's length term).
REWARD_TERMS = ("div", "rep", "attack")


class KeyFrameAgent(nn.Module):
    """BiLSTM + FC + sigmoid policy over frames (SVA Sec. 3.2, Eq. 3).

    Args:
        feature_dim: size ``D`` of the per-frame features ``v_t``.
        hidden: LSTM hidden size per direction (128 in the paper, Sec. 3.2).

    ``forward(features)`` takes ``[T, D]`` or ``[B, T, D]`` and returns ``p_t`` as ``[T]`` / ``[B, T]``.
    """

    def __init__(self, feature_dim: int, hidden: int = 128) -> None:
        super().__init__()
        if not isinstance(feature_dim, int) or feature_dim < 1 or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"feature_dim and hidden must be positive ints, got {feature_dim!r}, {hidden!r}")
        self.feature_dim = feature_dim
        self.hidden = hidden
        self.lstm = nn.LSTM(feature_dim, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, 1)

    def forward(self, features: Tensor) -> Tensor:
        single = features.dim() == 2
        if single:
            features = features.unsqueeze(0)
        if features.dim() != 3 or features.shape[-1] != self.feature_dim:
            raise ValueError(
                f"features must have shape [T, {self.feature_dim}] or [B, T, {self.feature_dim}], "
                f"got {tuple(features.shape)}"
            )
        states, _ = self.lstm(features)
        probs = torch.sigmoid(self.fc(states)).squeeze(-1)
        return probs[0] if single else probs


def new_agent(feature_dim: int, hidden: int = 128, generator: torch.Generator | None = None) -> KeyFrameAgent:
    """A freshly initialised agent whose weights depend only on ``generator`` (not the global RNG)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return KeyFrameAgent(feature_dim, hidden)


def sample_actions(probs: Tensor, episodes: int, generator: torch.Generator | None = None) -> Tensor:
    """``episodes`` independent key-frame draws ``a_t ~ Bernoulli(p_t)`` (Eq. 4): ``bool [episodes, T]``."""
    p = probs.detach().float().cpu().clamp(0.0, 1.0)
    return torch.bernoulli(p.unsqueeze(0).expand(episodes, -1).contiguous(), generator=generator).bool()


@torch.no_grad()
def frame_features(backbone: Callable[[Tensor], Tensor] | nn.Module, video: Tensor) -> Tensor:
    """Per-frame features ``[T, D]`` of one video ``[T, C, H, W]`` from the attacker's image backbone.

    ``backbone`` is an :class:`~vidattack.models.ImageBackbone` (its ``embed``, globally pooled
    last-block features, stands in for the paper's ResNet-18 features, Sec. 3.2) or any callable
    ``[T, C, H, W] -> [T, D]``.
    """
    embed = getattr(backbone, "embed", None)
    if isinstance(backbone, nn.Module):
        backbone.eval()
        device = next(iter(backbone.parameters()), torch.empty(0)).device
        video = video.to(device)
    features = embed(video) if callable(embed) else backbone(video)
    if features.dim() != 2 or features.shape[0] != video.shape[0]:
        raise ValueError(
            f"backbone must map [T,C,H,W] frames to [T, D] features, got {tuple(features.shape)}"
        )
    return features.detach().float().cpu()


def _check_pair(features: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
    if features.dim() != 2:
        raise ValueError(f"features must have shape [T, D], got {tuple(features.shape)}")
    chosen = torch.as_tensor(actions).reshape(-1).bool()
    if chosen.numel() != features.shape[0]:
        raise ValueError(f"actions must have one entry per frame ({features.shape[0]}), got {chosen.numel()}")
    return features.float(), chosen


def representativeness_reward(features: Tensor, actions: Tensor) -> float:
    """Eq. 5: ``exp(-(1/T) sum_t min_{t' in K} ||v_t - v_t'||_2)``; 0 when no frame is selected."""
    features, chosen = _check_pair(features, actions)
    if not bool(chosen.any()):
        return 0.0
    distances = torch.cdist(features, features[chosen])  # [T, |K|]
    return float(torch.exp(-distances.min(dim=1).values.mean()))


def diversity_reward(features: Tensor, actions: Tensor) -> float:
    """Eq. 6-7: mean pairwise cosine dissimilarity ``1 - cos(v_t, v_t')`` over selected pairs.

    0 when fewer than two frames are selected (no pair; the sum of Eq. 6 is empty).
    """
    features, chosen = _check_pair(features, actions)
    count = int(chosen.sum())
    if count < 2:
        return 0.0
    unit = nn.functional.normalize(features[chosen], dim=1)
    dissimilarity = 1.0 - unit @ unit.T
    off_diagonal = dissimilarity.sum() - dissimilarity.diagonal().sum()
    return float(off_diagonal / (count * (count - 1)))


def attack_reward(
    mean_perturbation: float,
    queries: int,
    success: bool,
    *,
    query_soft: float = 15000,
    query_hard: float = 30000,
    scale: float = 0.05,
    penalty: float = 0.999,
) -> float:
    """Eq. 8: the recognition model's feedback on one episode's attack.

    ``exp(-P / 0.05)`` when ``Q <= 15000``, ``0.999 * exp(-P / 0.05)`` when ``15000 < Q <= 30000`` and
    ``-1`` past the limit -- or when the episode did not find an adversarial video within its queries,
    which is the same event (the paper's attack runs until it succeeds or the limit is hit).

    Args:
        mean_perturbation: P, the episode's MAP in [0, 1] units (``|x_adv - x|_1 / #values``); 0.05,
            the normaliser, is the perturbation bound eps_adv (Sec. 3.4).
        queries: Q, the episode's queries.
        success: whether the episode's video is adversarial.
    """
    if not success or queries > query_hard:
        return -1.0
    value = math.exp(-float(mean_perturbation) / scale)
    return penalty * value if queries > query_soft else value


def total_reward(
    features: Tensor,
    actions: Tensor,
    attack: float | None,
    *,
    gamma_rep: float = 2.0,
    gamma_attack: float = 3.0,
    terms: Sequence[str] = REWARD_TERMS,
) -> float:
    """Eq. 9: ``R = R_div + gamma1 R_rep + gamma2 R_attack`` (gamma1 = 2, gamma2 = 3, Sec. 3.4 / Fig. 3).

    ``terms`` keeps a subset of ``("div", "rep", "attack")`` for the reward ablation (Table 5);
    ``attack=None`` (SVAL) drops R_attack.
    """
    unknown = set(terms) - set(REWARD_TERMS)
    if unknown:
        raise ValueError(f"reward terms must be among {REWARD_TERMS}, got {sorted(unknown)}")
    reward = 0.0
    if "div" in terms:
        reward += diversity_reward(features, actions)
    if "rep" in terms:
        reward += gamma_rep * representativeness_reward(features, actions)
    if "attack" in terms and attack is not None:
        reward += gamma_attack * attack
    return reward


def length_penalty(probs: Tensor, sparsity: float) -> Tensor:
    """Eq. 14 (SVAL): ``| (1/T) sum_t p_t + S - 1 |``, differentiable in ``p_t``.

    Zero when the expected share of selected frames equals ``1 - S``; SVAL minimises it (the paper
    writes it as a "reward" added to the objective; as a distance to the target it can only be a cost).
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must lie in [0, 1), got {sparsity}")
    return (probs.mean() + sparsity - 1.0).abs()


@dataclass
class MovingAverageBaseline:
    """The constant baseline ``b`` of Eq. 11: a moving average of the rewards experienced so far.

    Starts at the first batch's mean reward (so the first update is already centred), then
    ``b <- momentum * b + (1 - momentum) * mean(R)``.
    """

    momentum: float = 0.9
    value: float | None = None

    def update(self, rewards: Sequence[float]) -> None:
        mean = float(sum(rewards) / len(rewards))
        self.value = mean if self.value is None else self.momentum * self.value + (1 - self.momentum) * mean


def reinforce_update(
    agent: KeyFrameAgent,
    optimizer: torch.optim.Optimizer,
    features: Tensor,
    actions: Tensor,
    rewards: Sequence[float],
    baseline: MovingAverageBaseline,
    *,
    extra_loss: Callable[[Tensor], Tensor] | None = None,
) -> float:
    """One policy-gradient step (Eq. 10-11) from ``N`` episodes on one video; returns the loss.

    ``grad J ~ (1/N) sum_n (R_n - b) sum_t grad log pi(a_t^n | h_t)``; Adam ascends it (the loss
    minimised is its negative). ``b`` is read before and updated after the step.

    Args:
        features: ``[T, D]``; actions: ``bool [N, T]``; rewards: ``N`` floats.
        extra_loss: a differentiable cost of the probabilities ``[T]`` added to the loss (SVAL's Eq. 14).
    """
    actions = torch.as_tensor(actions).float()
    if actions.dim() != 2 or actions.shape[0] != len(rewards):
        raise ValueError(f"actions must be [N={len(rewards)}, T], got {tuple(actions.shape)}")
    if baseline.value is None:
        baseline.update(rewards)
    agent.train()
    probs = agent(features.float()).clamp(1e-6, 1 - 1e-6)
    log_prob = (actions * probs.log() + (1 - actions) * (1 - probs).log()).sum(dim=1)  # [N]
    advantage = torch.tensor(rewards, dtype=log_prob.dtype) - float(baseline.value)  # type: ignore[arg-type]
    loss = -(advantage * log_prob).mean()
    if extra_loss is not None:
        loss = loss + extra_loss(probs)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    agent.eval()
    baseline.update(rewards)
    return float(loss.detach())


def learn_by_episodes(
    policy: KeyFrameAgent,
    features: Tensor,
    play: Callable[[Tensor], float | None],
    *,
    epochs: int,
    episodes: int,
    lr: float,
    generator: torch.Generator | None = None,
) -> list[list[float]]:
    """SVA's online learning on one video (Sec. 3.3, Eq. 10-11): per epoch, ``episodes`` key-frame sets
    are drawn from ``policy`` (Eq. 4) and played, then one REINFORCE step (Adam, ``lr``) is taken.

    ``play(action bool [T])`` runs one episode and returns its total reward (Eq. 9), or ``None`` when no
    further episode can run (e.g. the budget): the epoch's update is then the last. Returns the rewards
    of each epoch that played at least one episode.
    """
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    baseline = MovingAverageBaseline()
    played: list[list[float]] = []
    for _epoch in range(epochs):
        with torch.no_grad():
            probs = policy(features)
        rewards: list[float] = []
        taken: list[Tensor] = []
        for action in sample_actions(probs, episodes, generator):
            reward = play(action)
            if reward is None:
                break
            rewards.append(reward)
            taken.append(action)
        if rewards:
            reinforce_update(policy, optimizer, features, torch.stack(taken), rewards, baseline)
            played.append(rewards)
        if len(rewards) < episodes:
            break
    return played


@dataclass
class SvalTraining:
    """Outcome of :func:`train_sval_agent`: the agent and its per-epoch mean reward curve."""

    agent: KeyFrameAgent
    reward_curve: list[float] = field(default_factory=list)
    length_curve: list[float] = field(default_factory=list)


def train_sval_agent(
    features: Sequence[Tensor],
    *,
    sparsity: float = 0.5,
    epochs: int = 20,
    episodes: int = 5,
    lr: float = 1e-5,
    lr_drop_epoch: int = 15,
    hidden: int = 128,
    gamma_rep: float = 2.0,
    gamma_length: float = 3.0,
    agent: KeyFrameAgent | None = None,
    generator: torch.Generator | None = None,
) -> SvalTraining:
    """Train SVAL's agent on training videos (Sec. 4.3): Eq. 9 with R_attack replaced by Eq. 14.

    No query is needed: the rewards depend on the attacker's own frame features only. Per epoch and
    training video, ``episodes`` key-frame draws are scored with ``R_div + gamma1 R_rep`` and the agent
    takes one REINFORCE step (Eq. 11) with ``gamma_length * L_percentage`` added as a differentiable cost.

    Args:
        features: per training video, its frame features ``[T, D]``.
        sparsity: S, the target share of unselected frames (paper: 0.5 untargeted, 0.2 targeted, Sec. 4.4).
        epochs: 20 (Sec. 4.3); lr: 1e-5, divided by 10 after ``lr_drop_epoch`` = 15 epochs (Sec. 4.3).
        gamma_length: the weight of Eq. 14 (it takes R_attack's place in Eq. 9, so gamma2 = 3 by default).
    """
    if not features:
        raise ValueError("features must hold at least one training video")
    dim = int(features[0].shape[-1])
    agent = agent if agent is not None else new_agent(dim, hidden, generator)
    optimizer = torch.optim.Adam(agent.parameters(), lr=lr)
    baseline = MovingAverageBaseline()
    result = SvalTraining(agent)
    for epoch in range(epochs):
        if epoch == lr_drop_epoch:
            for group in optimizer.param_groups:
                group["lr"] = lr / 10
        epoch_rewards, epoch_length = [], []
        for video_features in features:
            with torch.no_grad():
                probs = agent(video_features.float())
            actions = sample_actions(probs, episodes, generator)
            rewards = [
                total_reward(video_features, a, None, gamma_rep=gamma_rep, terms=("div", "rep"))
                for a in actions
            ]
            penalty = float(length_penalty(probs, sparsity))
            reinforce_update(
                agent,
                optimizer,
                video_features,
                actions,
                rewards,
                baseline,
                extra_loss=lambda p: gamma_length * length_penalty(p, sparsity),
            )
            epoch_rewards.append(sum(rewards) / len(rewards) - gamma_length * penalty)
            epoch_length.append(penalty)
        result.reward_curve.append(sum(epoch_rewards) / len(epoch_rewards))
        result.length_curve.append(sum(epoch_length) / len(epoch_length))
    agent.eval()
    return result


def save_agent(agent: KeyFrameAgent, path: str | Path, **metadata: object) -> Path:
    """Write ``agent`` to ``path`` (``.safetensors``) with its shape and ``metadata`` as JSON."""
    from safetensors.torch import save_file

    target = Path(path)
    if target.suffix != ".safetensors":
        target = target.with_suffix(".safetensors")
    target.parent.mkdir(parents=True, exist_ok=True)
    document = {"kind": "sva-agent", "feature_dim": agent.feature_dim, "hidden": agent.hidden, **metadata}
    state = {key: value.detach().cpu().contiguous() for key, value in agent.state_dict().items()}
    save_file(state, str(target), metadata={"vidattack": json.dumps(document)})
    return target


def load_agent(path: str | Path) -> tuple[KeyFrameAgent, dict[str, object]]:
    """Read an agent written by :func:`save_agent` (no code execution); returns it and its metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    source = Path(path)
    if not source.is_file() and source.with_suffix(".safetensors").is_file():
        source = source.with_suffix(".safetensors")
    if not source.is_file():
        raise ValueError(f"agent checkpoint {str(path)!r} does not exist")
    with safe_open(str(source), framework="pt") as handle:
        raw = (handle.metadata() or {}).get("vidattack")
    if raw is None:
        raise ValueError(f"{source} is not an SVA agent checkpoint (no vidattack metadata)")
    document = json.loads(raw)
    if document.get("kind") != "sva-agent":
        raise ValueError(f"{source} holds a {document.get('kind')!r}, not an SVA agent")
    agent = KeyFrameAgent(int(document["feature_dim"]), int(document["hidden"]))
    agent.load_state_dict(load_file(str(source)))
    agent.eval()
    return agent, document
