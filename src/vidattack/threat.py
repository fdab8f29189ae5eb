"""Threat models: how an attack may see the target model.

* :class:`WhiteBox` gives logits and gradients (white-box attacks: PGD, Flickering, sparse l2,1).
* :class:`ScoreOracle` returns only the top-k class indices and their softmax probabilities, detached
  (score-based black-box attacks: V-BAD, SVA). It is the only way such an attack may see the model.
* :class:`LabelOracle` returns only the top-1 label (decision-based attacks: Opt-attack, Heuristic).

Every oracle counts one query per video it evaluates, batches internally up to ``batch_size`` and
enforces a query budget *per attacked video*: the call that would exceed it raises
:class:`QueryBudgetExceeded` before the model runs, so a budget is never exceeded, not even by one
query. Attacks never count their own queries; the oracle's count is the reported number.

Per-video accounting: an attack on a batch of N videos passes ``owner=i`` (or a tensor of owners, one
per row) to :meth:`query`; counts are kept per owner in :attr:`queries_by_owner` and the budget applies
to each owner separately. Without an owner every query belongs to owner 0, so for a single video the
budget is simply the total.

Stopping early (:func:`graceful_stop`): oracles made inside the block end every budget where it stands
once its event is set (the command line sets it on Ctrl-C), so the attack ends as it does when a budget
runs out, with the best result found so far, instead of losing it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple

import torch
from torch import Tensor, nn

from vidattack.video import validate_video

__all__ = [
    "QueryBudgetExceeded", "StopRequested", "graceful_stop", "WhiteBox", "ScoreOracle", "LabelOracle", "TopK",
    "Oracle", "check_input",
]  # fmt: skip

Model = Callable[[Tensor], Tensor]


class QueryBudgetExceeded(RuntimeError):
    """Raised *before* the model runs by the oracle query that would take an owner past its budget.

    Attributes:
        owner: the attacked video whose budget would be exceeded.
        used: queries that owner had already spent.
        requested: queries the refused call asked for.
        budget: the per-video budget.
    """

    def __init__(self, owner: int, used: int, requested: int, budget: int) -> None:
        self.owner, self.used, self.requested, self.budget = owner, used, requested, budget
        super().__init__(
            f"query budget exceeded for video {owner}: {used} used + {requested} requested > budget {budget}"
        )


class StopRequested(QueryBudgetExceeded):
    """Raised instead of running the model once a stop was requested (:func:`graceful_stop`): every
    budget ends where it stands, so attacks end as when their budget runs out."""

    def __init__(self, owner: int, used: int, requested: int) -> None:
        super().__init__(owner, used, requested, used)
        self.args = (f"stop requested: video {owner} ends after {used} queries",)


_STOP: ContextVar[threading.Event | None] = ContextVar("vidattack_stop", default=None)


@contextmanager
def graceful_stop() -> Iterator[threading.Event]:
    """Oracles created inside the block answer no more queries once the yielded event is set.

    Their budgets end where they stand (``remaining()`` is 0; a query raises :class:`StopRequested`, a
    :class:`QueryBudgetExceeded`), so a running attack returns what it has, as at the end of its budget.
    The event may be set from a signal handler or another thread.
    """
    event = threading.Event()
    token = _STOP.set(event)
    try:
        yield event
    finally:
        _STOP.reset(token)


def _model_device(model: Model) -> torch.device | None:
    if isinstance(model, nn.Module):
        for tensor in model.parameters():
            return tensor.device
        for tensor in model.buffers():
            return tensor.device
    return None


def _prepare_model(model: Model) -> Model:
    if not callable(model):
        raise ValueError(f"model must be a callable from [N,T,C,H,W] videos to [N,K] logits, got {model!r}")
    # Attacks are evaluated against the deployed model: dropout and batch-norm statistics must not
    # make the oracle's answers random, so modules are put in eval mode once here.
    if isinstance(model, nn.Module):
        model.eval()
    return model


def check_input(model: Model, videos: Tensor) -> None:
    """Check ``videos [N,T,C,H,W]`` against what ``model`` declares it takes (``model.input_spec``: a
    mapping with ``frames`` (``None``: any length), ``channels``, ``height``, ``width``, ``dtype``), so
    a clip of the wrong shape or dtype fails with a clear ``ValueError`` before the model runs.
    Models that declare nothing are not checked."""
    spec = getattr(model, "input_spec", None)
    if not spec:
        return
    frames, channels = spec.get("frames"), spec.get("channels")
    size = (spec.get("height"), spec.get("width"))
    _, t, c, h, w = videos.shape
    expected = f"[N, {frames or 'T'}, {channels or 'C'}, {size[0] or 'H'}, {size[1] or 'W'}]"
    if (frames and t != frames) or (channels and c != channels) or (size[0] and (h, w) != size):
        raise ValueError(
            f"videos must have shape {expected} for this model, got {list(videos.shape)} (resample the clip "
            "to the model's frames and size: the CLI does this for video files)"
        )
    dtype = spec.get("dtype")
    if dtype is not None and videos.dtype != dtype:
        raise ValueError(f"videos must be {dtype} for this model, got {videos.dtype} (convert with .float())")


def _num_classes(model: Model, sample: Tensor) -> int:
    declared = getattr(model, "num_classes", None)
    if isinstance(declared, int) and declared > 0:
        return declared
    names = getattr(model, "class_names", None)
    if names:
        return len(names)
    # Nothing declared: one forward of one clip tells the size of the label space (not an attack query:
    # every threat model reveals which classes exist).
    with torch.no_grad():
        return int(_check_logits(model(sample[:1]), 1).shape[1])


def _check_logits(logits: object, n: int) -> Tensor:
    if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != n:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"model must return logits of shape [N={n}, K], got {shape}")
    return logits


class WhiteBox:
    """Full access to the model: logits and gradients.

    Args:
        model: a callable from ``[N,T,C,H,W]`` float videos in [0, 1] to logits ``[N, K]``; an
            ``nn.Module`` is put in eval mode.

    ``forward_calls`` counts the videos passed through the model (for reports; white-box attacks
    report iterations, not queries).
    """

    def __init__(self, model: Model) -> None:
        self.model = _prepare_model(model)
        self.device = _model_device(self.model)
        self.forward_calls = 0
        self._classes: int | None = None

    def num_classes(self, sample: Tensor) -> int:
        """The model's number of classes (declared, else from one forward of ``sample[:1]``)."""
        if self._classes is None:
            self._classes = _num_classes(self.model, sample if self.device is None else sample.to(self.device))
        return self._classes

    def logits(self, videos: Tensor) -> Tensor:
        """Logits ``[N, K]`` of ``videos [N,T,C,H,W]``, differentiable with respect to ``videos``."""
        validate_video(videos, "videos", check_range=False)
        check_input(self.model, videos)
        self.forward_calls += videos.shape[0]
        inputs = videos if self.device is None else videos.to(self.device)
        return _check_logits(self.model(inputs), videos.shape[0]).to(videos.device)

    __call__ = logits

    def frame_logits(self, videos: Tensor) -> Tensor:
        """Per-frame logits ``[N, T, K]`` for models that expose them (CNN+RNN); else ``ValueError``."""
        method = getattr(self.model, "frame_logits", None)
        if method is None:
            raise ValueError(f"model {type(self.model).__name__} has no per-frame logits (frame_logits)")
        self.forward_calls += videos.shape[0]
        inputs = videos if self.device is None else videos.to(self.device)
        return method(inputs).to(videos.device)

    def predict(self, videos: Tensor) -> Tensor:
        """Top-1 labels ``long[N]`` without gradients."""
        with torch.no_grad():
            return self.logits(videos).argmax(dim=1)

    def gradient(self, videos: Tensor, loss_fn: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
        """Return ``(loss [N], d sum(loss) / d videos [N,T,C,H,W])``; ``loss_fn`` maps logits to ``[N]``."""
        inputs = videos.detach().clone().requires_grad_(True)
        loss = loss_fn(self.logits(inputs))
        (grad,) = torch.autograd.grad(loss.sum(), inputs)
        return loss.detach(), grad


class TopK(NamedTuple):
    """What a :class:`ScoreOracle` reveals: ``labels long[N, k]`` and ``probs float[N, k]`` (descending)."""

    labels: Tensor
    probs: Tensor


class Oracle:
    """Shared machinery of the black-box oracles: batching, counting and the per-video budget.

    Args:
        model: a callable from ``[N,T,C,H,W]`` float videos in [0, 1] to logits ``[N, K]``.
        budget: maximum queries per attacked video (``None``: unlimited).
        batch_size: largest batch sent to the model at once.
        validate: check shape, finiteness and the [0, 1] range of every query (a black-box attack must
            not be able to probe the model outside the valid input domain).
    """

    def __init__(
        self, model: Model, *, budget: int | None = None, batch_size: int = 64, validate: bool = True
    ) -> None:
        if budget is not None and (not isinstance(budget, int) or budget < 0):
            raise ValueError(f"budget must be a non-negative int or None, got {budget!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self._model = _prepare_model(model)
        self._device = _model_device(self._model)
        self.budget = budget
        self.batch_size = batch_size
        self.validate = validate
        self.queries_by_owner: Counter[int] = Counter()
        self._classes: int | None = None
        self._stop = _STOP.get()

    def num_classes(self, sample: Tensor) -> int:
        """The model's number of classes: declared by the model (``num_classes`` / ``class_names``), else
        learnt from one uncounted forward of ``sample[:1]`` (the label space is public in every threat
        model: it is what the labels index)."""
        if self._classes is None:
            check_input(self._model, sample)
            chunk = sample if self._device is None else sample.to(self._device)
            self._classes = _num_classes(self._model, chunk)
        return self._classes

    @property
    def queries(self) -> int:
        """Total queries answered by this oracle (all owners)."""
        return sum(self.queries_by_owner.values())

    def used(self, owner: int = 0) -> int:
        """Queries spent so far for one attacked video."""
        return self.queries_by_owner[owner]

    @property
    def stopped(self) -> bool:
        """Whether a stop was requested (:func:`graceful_stop`): no more queries are answered."""
        return self._stop is not None and self._stop.is_set()

    def remaining(self, owner: int = 0) -> int | None:
        """Queries left in ``owner``'s budget, or ``None`` when unlimited (0 once stopped)."""
        if self.stopped:
            return 0
        return None if self.budget is None else self.budget - self.queries_by_owner[owner]

    def _owners(self, owner: int | Tensor | None, n: int) -> list[int]:
        if owner is None:
            return [0] * n
        if isinstance(owner, int):
            return [owner] * n
        owners = owner.reshape(-1).tolist()
        if len(owners) != n:
            raise ValueError(f"owner must have one entry per queried video ({n}), got {len(owners)}")
        return [int(o) for o in owners]

    def _charge(self, owners: list[int]) -> None:
        requested = Counter(owners)
        if self.stopped:
            who, count = next(iter(requested.items()))
            raise StopRequested(who, self.queries_by_owner[who], count)
        if self.budget is not None:
            # All owners are checked before anything is charged or run: a refused call costs nothing.
            for who, count in requested.items():
                if self.queries_by_owner[who] + count > self.budget:
                    raise QueryBudgetExceeded(who, self.queries_by_owner[who], count, self.budget)
        self.queries_by_owner.update(requested)

    def _logits(self, videos: Tensor, owner: int | Tensor | None) -> Tensor:
        validate_video(videos, "videos", check_range=self.validate)
        check_input(self._model, videos)
        self._charge(self._owners(owner, videos.shape[0]))
        outputs = []
        with torch.inference_mode():
            for start in range(0, videos.shape[0], self.batch_size):
                chunk = videos[start : start + self.batch_size]
                if self._device is not None:
                    chunk = chunk.to(self._device)
                outputs.append(_check_logits(self._model(chunk), chunk.shape[0]).float())
            logits = torch.cat(outputs).to(videos.device)
        return logits


class ScoreOracle(Oracle):
    """Score-based black-box access: only the top-k labels and their softmax probabilities.

    Args:
        model: callable ``[N,T,C,H,W]`` in [0, 1] -> logits ``[N, K]``.
        top_k: how many (label, probability) pairs are revealed per video (V-BAD's threat model: 1).
        budget, batch_size, validate: see :class:`Oracle`.
    """

    def __init__(
        self,
        model: Model,
        *,
        top_k: int = 1,
        budget: int | None = None,
        batch_size: int = 64,
        validate: bool = True,
    ) -> None:
        super().__init__(model, budget=budget, batch_size=batch_size, validate=validate)
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a positive int, got {top_k!r}")
        self.top_k = top_k

    def query(self, videos: Tensor, *, owner: int | Tensor | None = None) -> TopK:
        """Top-k labels ``long[N, k]`` and probabilities ``float[N, k]`` of ``videos [N,T,C,H,W]``.

        Costs ``N`` queries (charged to ``owner``); raises :class:`QueryBudgetExceeded` before running
        the model when that would exceed the budget. The outputs carry no gradient.
        """
        logits = self._logits(videos, owner)
        with torch.inference_mode():
            probs, labels = torch.softmax(logits, dim=1).topk(min(self.top_k, logits.shape[1]), dim=1)
        # Clone outside inference mode so callers get ordinary tensors they may modify.
        return TopK(labels.clone(), probs.clone())

    def prob_of(self, videos: Tensor, classes: Tensor, *, owner: int | Tensor | None = None) -> Tensor:
        """Probability of ``classes [N]`` when it is among the top-k, else 0 (what top-k access reveals).

        This is how V-BAD reads "the probability of the true / target class" through a top-1 oracle.
        """
        answer = self.query(videos, owner=owner)
        hit = answer.labels == classes.to(answer.labels.device).reshape(-1, 1)
        return (answer.probs * hit).sum(dim=1)


class LabelOracle(Oracle):
    """Decision-based black-box access: only the top-1 label. See :class:`Oracle` for the arguments."""

    def query(self, videos: Tensor, *, owner: int | Tensor | None = None) -> Tensor:
        """Top-1 labels ``long[N]`` of ``videos [N,T,C,H,W]``; costs ``N`` queries charged to ``owner``."""
        labels = self._logits(videos, owner).argmax(dim=1)
        return labels.clone()
