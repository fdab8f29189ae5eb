"""V-BAD: black-box video attacks by partition-rectified tentative perturbations (Jiang et al., ACM MM 2019).

The attack sees the target only through a top-1 :class:`~vidattack.threat.ScoreOracle` (Sec. 3.1,
"Threat Model": the top-1 label and its probability). Each step (Sec. 3.2, Fig. 2):

a) a *tentative perturbation* ``h`` of the current video: static, random, or transferred from white-box
   attacks on image models (:mod:`vidattack.priors.tentative`, Sec. 3.3, Eq. 3);
b) a *partition* of the input dimensions into parts (:mod:`vidattack.priors.partition`, Sec. 3.4);
c) a derivative-free estimate ``v`` of the objective's derivatives along the parts' directions
   ``d^(i)`` (Eq. 5): NES with antithetic samples and rank fitness (Alg. 2, Eq. 7) or central finite
   differences, on the coefficients ``v`` (initialised at 0), the whole population sent as one batched
   oracle call (:mod:`vidattack.estimators`);
d) rectification ``g_j = v_i * h_j`` for ``j in G^(i)`` (Eq. 4), one gather;
e) one PGD step with ``sign(g)`` (:mod:`vidattack.attacks.blackbox_pgd`): Eq. 2 untargeted, Alg. 1
   targeted (start from a target-class video and shrink towards the eps-ball).

The objective is ``-P(label | x)`` untargeted and ``P(target | x)`` targeted, as a top-1 oracle reveals
it (zero when the class is not the top-1).

Where the defaults go beyond the paper's text (each measured on the test bed, in
benchmarks/results_vbad.md, and each switchable back): the tentative perturbation comes from the
image models' *first* block with sparse masks (``feature_layer="first"``, ``mask_prob=0.1``); the
uniform grid is shifted at random at every step (``grid_shift``); steps follow a momentum average of
the estimates (``momentum=0.9``); the NES population doubles when the attack stalls at its smallest
step (``max_population=192``), after refining the grid twice when targeted (``grid_refinements``);
and the targeted loop proposes several shrinks per estimate in one batched call and adapts
``delta_eps`` to the one that worked (``shrink_tries=4``, ``adaptive_decay``). ``feature_layer=None,
mask_prob=0.5, grid_shift=False, momentum=0, max_population=None, grid_refinements=0, shrink_tries=1,
adaptive_decay=False`` (:data:`PAPER_SETTINGS`, the registry's ``vbad-paper``) is V-BAD as written.

Registry entries (``vidattack attack vbad|vbad-paper|pbad|srbad``): ``vbad`` (transferred tentative
perturbation from an image-model ensemble, uniform 8x8 partition, NES with population 48, with the
extensions above), ``vbad-paper`` (the same, as written), and the two baselines of Sec. 4.3 as
presets: ``pbad`` (static tentative, pixel partition, population 96: the NES attack of Ilyas et al.
inside V-BAD) and ``srbad`` (static tentative, random partition).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from vidattack.attacks.blackbox_pgd import (
    BlackBoxPGDOutcome,
    project_towards,
    start_candidates,
    targeted_blackbox_pgd,
    untargeted_blackbox_pgd,
)
from vidattack.estimators import fd_estimate, nes_estimate
from vidattack.perturbation import build_mask
from vidattack.priors.partition import (
    PARTITIONS,
    Partition,
    make_partition,
    partition_uniform,
    random_grid_offset,
)
from vidattack.priors.tentative import TENTATIVES, make_tentative
from vidattack.result import AttackResult, TracePoint, video_extras
from vidattack.threat import QueryBudgetExceeded, ScoreOracle
from vidattack.video import validate_label_and_target, validate_video

__all__ = ["vbad", "VBADEstimator", "VBADConfig", "ESTIMATORS", "PBAD", "SRBAD"]

ESTIMATORS = ("nes", "fd")


@dataclass(frozen=True)
class VBADConfig:
    """The settings where vidattack's V-BAD goes beyond the paper, each a keyword of :func:`vbad`.

    ``VBADConfig()`` is the extended default (what :func:`vbad` does when not told otherwise);
    :meth:`paper` is V-BAD exactly as written. :func:`vbad`'s docstring gives each setting's reason and
    measurement; :meth:`as_params` gives the keywords to pass.
    """

    feature_layer: str | None = "first"
    mask_prob: float = 0.1
    grid_shift: bool = True
    momentum: float = 0.9
    max_population: int | None = 192
    grid_refinements: int | None = None
    shrink_tries: int = 4
    adaptive_decay: bool = True

    @classmethod
    def paper(cls) -> VBADConfig:
        """V-BAD as written: last-block features, masks 1/2, a fixed grid, sign steps without momentum,
        a fixed population and grid, Alg. 1's single shrink with its halving rule."""
        return cls(
            feature_layer=None, mask_prob=0.5, grid_shift=False, momentum=0.0, max_population=None,
            grid_refinements=0, shrink_tries=1, adaptive_decay=False,
        )  # fmt: skip

    def as_params(self) -> dict[str, Any]:
        """The settings as :func:`vbad` keywords."""
        return dataclasses.asdict(self)


_EXTENDED = VBADConfig()
#: P-BAD (Sec. 4.3): pixel-wise NES with population 96 and the static tentative perturbation.
PBAD: dict[str, Any] = {"tentative": "static", "partition": "pixel", "population": 96}
#: SR-BAD (Sec. 4.3): the static tentative perturbation and a random partition.
SRBAD: dict[str, Any] = {"tentative": "static", "partition": "random"}


class VBADEstimator:
    """V-BAD's gradient estimate for one video (steps a-d of Sec. 3.2); a :data:`GradientEstimate`.

    Calling it with the current adversarial video ``[1,T,C,H,W]`` and an owner returns the rectified
    perturbation ``g [1,T,C,H,W]`` (Eq. 4), an estimate of the gradient of ``P(target | x)``
    (targeted) or ``-P(label | x)`` (untargeted). It spends exactly ``population`` queries (one batched
    oracle call) per call; :meth:`estimate_and_read` also reads the point itself in that call, and
    :meth:`on_stall` refines the uniform grid (up to ``max_patches``), then doubles the population (up
    to ``max_population``), when the attack stalls.
    The other arguments are :func:`vbad`'s.

    Attributes:
        seconds: wall time spent per phase (``tentative``, ``partition``, ``candidates``, ``oracle``,
            ``estimator``), for profiling.
        population: the current NES population.
        patches: the current patches per frame of the uniform grid.
    """

    def __init__(
        self,
        oracle: ScoreOracle,
        shape: tuple[int, int, int, int],
        cls: int,
        *,
        targeted: bool,
        tentative: str,
        image_models: Sequence[nn.Module] | None,
        feature_layer: str | None,
        mask_prob: float,
        reference_video: Tensor | None,
        partition: str,
        patches: int,
        num_parts: int | None,
        grid_shift: bool = False,
        estimator: str,
        population: int,
        sigma: float,
        generator: torch.Generator | None,
        device: torch.device | str | None = None,
        max_population: int | None = None,
        max_patches: int | None = None,
    ) -> None:
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        if partition not in PARTITIONS:
            raise ValueError(f"partition must be one of {PARTITIONS}, got {partition!r}")
        self.oracle, self.shape, self.cls, self.targeted = oracle, tuple(shape), int(cls), targeted
        self.tentative = make_tentative(
            tentative, image_models=image_models, reference_video=reference_video, layer=feature_layer,
            mask_prob=mask_prob, generator=generator, device=device,
        )  # fmt: skip
        self.partition_kind, self.patches, self.num_parts = partition, patches, num_parts
        self.grid_shift = bool(grid_shift) and partition == "uniform"
        self.estimator, self.population, self.sigma, self.generator = estimator, population, sigma, generator
        self.device = device
        # A fixed grid (and the pixel partition) is built once. A random partition is redrawn at every
        # step (Sec. 4.2: "partitioning is applied in every step of perturbation"), and so is the
        # shifted uniform grid.
        self._fixed: Partition | None = None
        if partition != "random" and not self.grid_shift:
            self._fixed = make_partition(
                partition, self.shape, patches=patches, num_parts=num_parts, device=device
            )
        self.seconds = {
            "tentative": 0.0,
            "partition": 0.0,
            "candidates": 0.0,
            "oracle": 0.0,
            "estimator": 0.0,
        }
        self.calls = 0
        # grow_population() doubles the population up to this (None: a fixed population)
        self.max_population = max(population, max_population or population)
        # on_stall() doubles the uniform grid's patches per frame up to this (at most the frame size)
        self.max_patches = min(max(patches, max_patches or patches), *self.shape[-2:])

    def on_stall(self) -> None:
        """The attack stalls at its smallest step: refine the uniform grid, else grow the population.

        A finer grid lets the rectified estimate follow finer structure (patches per frame doubled, up
        to ``max_patches``); once the grid is at its finest, :meth:`grow_population`.
        """
        if self.partition_kind == "uniform" and self.patches < self.max_patches:
            self.patches = min(2 * self.patches, self.max_patches)
            if self._fixed is not None:
                self._fixed = partition_uniform(self.shape, self.patches, device=self.device)
            return
        self.grow_population()

    def grow_population(self) -> None:
        """Double the NES population, up to ``max_population`` (called when the attack stalls)."""
        grown = min(2 * self.population, self.max_population)
        self.population = max(self.population, grown - grown % 2)  # antithetic pairs: even

    def current_partition(self) -> Partition:
        """The partition of the next step (redrawn for ``partition="random"`` and a shifted grid)."""
        if self._fixed is not None:
            return self._fixed
        if self.grid_shift:
            offset = random_grid_offset(self.shape, self.patches, self.generator)
            return partition_uniform(self.shape, self.patches, offset=offset, device=self.device)
        return make_partition(
            "random",
            self.shape,
            patches=self.patches,
            num_parts=self.num_parts,
            generator=self.generator,
            device=self.device,
        )

    def tentative_of(self, adversarial: Tensor) -> Tensor:
        """The tentative perturbation ``h [1,T,C,H,W]`` of the current video (Sec. 3.3)."""
        return self.tentative(adversarial.reshape(self.shape)).reshape(1, *self.shape)

    def __call__(self, adversarial: Tensor, owner: int = 0) -> Tensor:
        return self._estimate(adversarial, owner, read=False)[0]

    def estimate_and_read(self, adversarial: Tensor, owner: int = 0) -> tuple[Tensor, int, float]:
        """The estimate plus the top-1 label and probability at ``adversarial``, from one oracle call
        of ``population + 1`` videos (:class:`~vidattack.attacks.blackbox_pgd.FoldedEstimate`)."""
        rectified, center = self._estimate(adversarial, owner, read=True)
        assert center is not None
        return rectified, center[0], center[1]

    def _estimate(
        self, adversarial: Tensor, owner: int, *, read: bool
    ) -> tuple[Tensor, tuple[int, float] | None]:
        clock = time.perf_counter()
        tentative = self.tentative_of(adversarial).reshape(-1)
        now = time.perf_counter()
        self.seconds["tentative"] += now - clock
        partition = self.current_partition()
        clock, now = now, time.perf_counter()
        self.seconds["partition"] += now - clock
        center = adversarial.reshape(1, -1)
        spent = {"candidates": 0.0, "oracle": 0.0}
        read_out: list[tuple[int, float]] = []

        def objective(coefficients: Tensor) -> Tensor:
            start = time.perf_counter()
            # x + sum_i d^(i) * v_i (Alg. 2) for the whole population in one gather; kept in [0, 1]
            # because the oracle only answers valid videos.
            candidates = torch.addcmul(center, partition.expand(coefficients), tentative).clamp_(0.0, 1.0)
            if read:
                candidates = torch.cat([center, candidates])
            candidates = candidates.reshape(candidates.shape[0], *self.shape)
            middle = time.perf_counter()
            answer = self.oracle.query(candidates, owner=owner)
            spent["candidates"] += middle - start
            spent["oracle"] += time.perf_counter() - middle
            # P(cls | x) where cls is the top-1 class, else 0: all a top-1 oracle reveals of it.
            probs = answer.probs[:, 0] * (answer.labels[:, 0] == self.cls)
            if read:
                read_out.append((int(answer.labels[0, 0]), float(answer.probs[0, 0])))
                probs = probs[1:]
            return probs if self.targeted else -probs

        zeros = torch.zeros(partition.num_parts, dtype=adversarial.dtype, device=adversarial.device)
        if self.estimator == "nes":
            coefficients = nes_estimate(
                objective, zeros, population=self.population, sigma=self.sigma, generator=self.generator
            )
        else:
            coefficients = fd_estimate(
                objective, zeros, queries=self.population, step=self.sigma, generator=self.generator
            )
        rectified = partition.expand(coefficients) * tentative
        total = time.perf_counter() - now
        self.seconds["candidates"] += spent["candidates"]
        self.seconds["oracle"] += spent["oracle"]
        self.seconds["estimator"] += total - spent["candidates"] - spent["oracle"]
        self.calls += 1
        return rectified.reshape(1, *self.shape), (read_out[0] if read_out else None)


def vbad(
    oracle: ScoreOracle,
    videos: Tensor,
    label: Tensor | int | Sequence[int],
    *,
    target: Tensor | int | Sequence[int] | None = None,
    eps: float = 0.05,
    tentative: Literal["transferred", "static", "random"] = "transferred",
    image_models: Sequence[nn.Module] = (),
    feature_layer: str | None = _EXTENDED.feature_layer,
    mask_prob: float = _EXTENDED.mask_prob,
    partition: Literal["uniform", "random", "pixel"] = "uniform",
    patches: int = 8,
    num_parts: int | None = None,
    grid_shift: bool = _EXTENDED.grid_shift,
    estimator: Literal["nes", "fd"] = "nes",
    population: int = 48,
    max_population: int | None = _EXTENDED.max_population,
    grid_refinements: int | None = _EXTENDED.grid_refinements,
    sigma: float | None = None,
    step_size: float | None = None,
    min_step_size: float | None = None,
    plateau: int = 5,
    momentum: float = _EXTENDED.momentum,
    fold_reads: bool = False,
    start_video: Tensor | Sequence[Tensor] | None = None,
    start_eps: float | None = None,
    start_search: tuple[float, ...] | None = None,
    eps_decay: float = 0.05,
    decay_patience: int = 100,
    loss_window: int = 10,
    step_on_failure: bool = False,
    shrink_tries: int = _EXTENDED.shrink_tries,
    adaptive_decay: bool = _EXTENDED.adaptive_decay,
    frame_mask: Tensor | None = None,
    pixel_mask: Tensor | None = None,
    max_iterations: int | None = None,
    generator: torch.Generator | None = None,
) -> AttackResult:
    """Attack ``videos [N,T,C,H,W]`` (in [0, 1]) with V-BAD through a top-1 score oracle.

    Videos are attacked one after another; video ``i`` is charged to oracle owner ``i`` so the oracle's
    per-video budget applies to each, and ``queries[i]`` is the oracle's count for it.

    Args:
        oracle: :class:`~vidattack.threat.ScoreOracle` (top-1 suffices: Sec. 3.1).
        label: true classes ``[N]``.
        target: target classes ``[N]`` (Alg. 1) or ``None`` (untargeted, Eq. 2).
        eps: L-inf bound, [0, 1] units (0.05, Sec. 4.1).
        tentative: ``"transferred"`` (paper's V-BAD), ``"static"`` or ``"random"`` (Sec. 3.3).
        image_models: image backbones of the transferred tentative perturbation, averaged as an
            ensemble (Sec. 4.1; the paper's are ImageNet ResNet-50, DenseNet-121 and DenseNet-169);
            needed for ``tentative="transferred"``. One model = the "Single" variant of Table 2. The
            methods layer loads them by name (:func:`vidattack.methods.model_refs.load_image_models`).
        feature_layer: feature layer ``l`` of Eq. 3: ``"first"`` (each image model's first
            convolutional block, the default), a stage name, or ``None`` (each model's last block).
            The paper does not fix ``l``; on the test bed the first block's perturbation is the one
            closest to the video models' gradients (best-possible rectification cosine 0.32 against
            0.19 for the last block, c3d-synth) and the cheapest to compute.
        mask_prob: probability of 1 in Eq. 3's random masks ``M_t`` (the paper: "randomly set to
            either 1 or 0"; default 0.1). The masks are what makes successive tentative
            perturbations differ; with the test bed's weakly transferring image models a sparser mask
            (more change between steps) fools the most confident videos that 1/2 leaves unfooled
            (benchmarks/results_vbad.md, chosen on validation-split videos).
        partition: ``"uniform"`` (V-BAD), ``"random"`` (SR-BAD) or ``"pixel"`` (P-BAD) (Sec. 3.4, 4.3).
        patches: uniform grid per frame, ``patches x patches`` (8x8, Sec. 4.1); the random partition has
            as many parts (``T * patches^2``) unless ``num_parts`` is given.
        grid_shift: shift the uniform grid by a random offset (less than a patch) at every step, as the
            random partition is redrawn at every step (Sec. 4.2). Not in the paper, whose grid is
            fixed: a fixed grid confines the whole attack to perturbations built from the same
            patches, which on the test bed stalls on the most confident videos.
        estimator: ``"nes"`` (Alg. 2) or ``"fd"`` (central differences on ``population // 2`` random
            parts per step: the same queries per step, Sec. 4.2).
        population: NES population per estimate (48, Sec. 4.1; P-BAD 96, Sec. 4.3).
        max_population: the population doubles, up to this size, each time the attack stalls with
            its step size already at the floor (``None``: fixed, the paper's setting; default 192).
            On the test bed, one more estimate per step helps less than a better one once steps are
            small: c3d-synth's hardest test video is fooled within 30,000 queries in 3 of 3 seeds
            with it and 1 of 4 without (benchmarks/results_vbad.md).
        grid_refinements: how many times the uniform grid may double its patches per frame (up to the
            frame size) when the attack stalls with its step size at the floor, before the population
            grows (default: 2 targeted, 0 untargeted; 0 is the paper's fixed 8x8). Not in the paper. On
            the test bed the targeted attack ends at the decision boundary, where an 8x8 grid is too
            coarse: with 16x16 from the start, c3d-synth's 391 -> 3 is fooled (71,882 queries) and
            69 -> 9 ends at eps 0.0595 instead of 0.067, where 8x8 with any other setting tried stalls;
            refining on stall took the targeted acceptance campaign from 7/10 to 8/10
            (benchmarks/results_vbad.md).
        sigma: NES search standard deviation / FD step (default ``1e-3`` untargeted, ``1e-6`` targeted,
            Sec. 4.1).
        step_size, min_step_size, plateau: PGD step ``alpha`` and its dynamic halving (see
            :func:`~vidattack.attacks.blackbox_pgd.untargeted_blackbox_pgd` and
            :func:`~vidattack.attacks.blackbox_pgd.targeted_blackbox_pgd` for the defaults).
        momentum: the PGD steps follow the sign of an exponential average of the (normalised)
            rectified estimates, ``m <- momentum * m + (1 - momentum) * g``. Not in V-BAD's text
            (Eq. 2 / Alg. 1 step along ``sign(g)``, i.e. ``momentum=0``); 0.9 is the value of the public
            implementation of the NES attack V-BAD builds on (Ilyas et al. 2018, ref. [19]). On the test
            bed a single 48-sample estimate of 1,024 patch factors has cosine ~0.03 with the true
            gradient and plain sign steps stall on confident videos; see benchmarks/results_vbad.md.
        fold_reads: untargeted: read each new point in the oracle call of the population around it
            (see :func:`~vidattack.attacks.blackbox_pgd.untargeted_blackbox_pgd`): faster per query,
            up to ``population`` more queries per video. Off by default.
        start_video: targeted only: target-class videos to start from (Alg. 1), ``[T,C,H,W]``,
            ``[N,T,C,H,W]`` (one per attacked video) or a list of ``N`` tensors ``[M_i,T,C,H,W]`` of
            candidates. Candidates are checked through the oracle one at a time (each check is a counted
            query) until one is classified as the target (all at once with ``start_search``). Its
            frames are also Eq. 3's reference ``R_t``.
        start_eps: ``epsilon_0`` of Alg. 1 (default: the radius found by ``start_search``, else the start
            video's L-inf distance to the clean one).
        start_search: targeted: radii, as multiples of ``eps`` (e.g. ``(2, 3, 4, 6)``), at which every
            candidate start video is projected around the clean one; all ``M x (len + 1)`` projections
            (and the unprojected candidates) are read in one batched oracle call, and the attack starts
            from the candidate whose projection keeps the target at the smallest radius (ties: the
            highest target probability), projected to that radius. ``None`` (default): Alg. 1 as written, the first candidate
            classified as the target, unprojected (each check one query). Not in the paper. On the
            test bed (c3d-synth, 10 videos, 100k, before ``grid_refinements``) it left the success
            rate at 7/10 and brought the failures closer (final eps 0.085 / 0.062 / 0.067 against
            0.090 / 0.068 / 0.067) but raised the mean queries of the successes from 8,812 to 13,383,
            hence off (benchmarks/results_vbad.md).
        eps_decay: initial ``delta_eps`` of Alg. 1 (not given in the paper).
        decay_patience: failures to shrink ``eps`` before ``delta_eps`` is halved (100, Sec. 4.1).
        loss_window: recent second steps over which "lost the target more than half the time" is judged
            (Sec. 4.1 gives the 50% threshold, not the window).
        step_on_failure: targeted: still step within the current bound when shrinking fails (not Alg. 1).
        shrink_tries: targeted: Alg. 1's shrinking step is proposed with the decays ``delta``,
            ``delta/2``, ... (this many, read in one batched oracle call) and the largest that keeps the
            target is taken (default 4; 1 is Alg. 1 as written, which discards the estimate when its
            one proposal loses the target).
        adaptive_decay: targeted: ``delta`` follows the shrink that worked (doubled after a full one,
            up to ``eps_decay``) instead of only halving after ``decay_patience`` failures (which still
            applies). Default on; off with ``shrink_tries=1`` is the paper's rule.
        frame_mask, pixel_mask: restrict the perturbation (see :func:`vidattack.perturbation.build_mask`).
        max_iterations: optional cap on gradient estimates per video.
        generator: all randomness (NES samples, masks, random tentatives and partitions).

    Returns:
        :class:`~vidattack.result.AttackResult`; ``extras`` hold the configuration, ``stop`` reasons,
        final ``eps`` reached (targeted), step sizes and per-phase ``seconds_*`` timings.
    """
    start_time = time.perf_counter()
    if not isinstance(oracle, ScoreOracle):
        raise ValueError(
            f"vbad is a score-based attack: pass vidattack.ScoreOracle(model), got {type(oracle).__name__}"
        )
    validate_video(videos, "videos")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if tentative not in TENTATIVES:
        raise ValueError(f"tentative must be one of {TENTATIVES}, got {tentative!r}")
    if partition not in PARTITIONS:
        raise ValueError(f"partition must be one of {PARTITIONS}, got {partition!r}")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if not isinstance(population, int) or population < 2 or population % 2:
        raise ValueError(f"population must be an even int >= 2 (antithetic pairs), got {population!r}")
    if max_population is not None and (not isinstance(max_population, int) or max_population < 2):
        raise ValueError(f"max_population must be an int >= 2 or None, got {max_population!r}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if not isinstance(patches, int) or patches < 1:
        raise ValueError(f"patches must be a positive int, got {patches!r}")
    if tentative == "transferred" and not image_models:
        raise ValueError(
            "image_models: the transferred tentative perturbation needs at least one image model "
            "(or pass tentative='static', the paper's P-BAD/SR-BAD setting)"
        )
    search_radii = _search_radii(start_search, eps)
    n = videos.shape[0]
    clean = videos.detach().clone()
    labels, targets = validate_label_and_target(label, target, n, oracle.num_classes(clean))
    if sigma is None:
        sigma = 1e-6 if targets is not None else 1e-3
    if grid_refinements is None:
        grid_refinements = 2 if targets is not None else 0
    if not isinstance(grid_refinements, int) or grid_refinements < 0:
        raise ValueError(f"grid_refinements must be an int >= 0 or None, got {grid_refinements!r}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    shape = tuple(clean.shape[1:])

    adversarial = clean.clone()
    success = torch.zeros(n, dtype=torch.bool)
    queries = torch.zeros(n, dtype=torch.long)
    iterations = torch.zeros(n, dtype=torch.long)
    adv_label = torch.full((n,), -1, dtype=torch.long)
    trace: list[list[TracePoint]] = []
    stops: list[str] = []
    final_eps: list[float] = []
    step_sizes: list[float] = []
    populations: list[int] = []
    grids: list[int] = []
    seconds = {"tentative": 0.0, "partition": 0.0, "candidates": 0.0, "oracle": 0.0, "estimator": 0.0}
    region = build_mask(clean.shape, frame_mask=frame_mask, pixel_mask=pixel_mask, device=clean.device)
    for i in range(n):
        before = oracle.used(i)
        video = clean[i : i + 1]
        mask_i = None if region is None else region[i if region.shape[0] == n else 0].unsqueeze(0)
        start, found_eps = None, None
        if targets is not None:
            start, found_eps = _select_start(
                oracle, start_candidates(start_video, i, n, clean.shape), int(targets[i]), i, video,
                search_radii, mask_i,
            )
        if targets is not None and start is None:
            outcome = BlackBoxPGDOutcome(
                video, False, -1, 0, oracle.used(i) - before, [], 0.0, 0.0, "no-start-video"
            )
            populations.append(population)
            grids.append(patches)
        else:
            estimate = VBADEstimator(
                oracle, shape, int(labels[i] if targets is None else targets[i]),
                targeted=targets is not None, tentative=tentative, image_models=image_models,
                feature_layer=feature_layer, mask_prob=mask_prob, reference_video=start, partition=partition,
                patches=patches, num_parts=num_parts, grid_shift=grid_shift, estimator=estimator,
                population=population, max_population=max_population,
                max_patches=patches * 2**grid_refinements, sigma=sigma, generator=generator, device=clean.device,
            )  # fmt: skip
            if targets is None:
                outcome = untargeted_blackbox_pgd(
                    oracle, video, int(labels[i]), estimate, eps=eps, step_size=step_size,
                    min_step_size=min_step_size, plateau=plateau, momentum=momentum, mask=mask_i, owner=i,
                    max_iterations=max_iterations, fold_reads=fold_reads, on_stall=estimate.on_stall,
                )  # fmt: skip
            else:
                outcome = targeted_blackbox_pgd(
                    oracle, video, int(targets[i]), start, estimate, eps=eps,
                    start_eps=found_eps if start_eps is None else start_eps,
                    step_size=step_size, min_step_size=min_step_size, eps_decay=eps_decay,
                    decay_patience=decay_patience, loss_window=loss_window, step_on_failure=step_on_failure,
                    shrink_tries=shrink_tries, adaptive_decay=adaptive_decay, momentum=momentum,
                    mask=mask_i, owner=i, max_iterations=max_iterations, on_stall=estimate.on_stall,
                )  # fmt: skip
            for key, value in estimate.seconds.items():
                seconds[key] += value
            populations.append(estimate.population)
            grids.append(estimate.patches)
        adversarial[i] = outcome.adversarial[0]
        success[i] = outcome.success
        adv_label[i] = outcome.adv_label
        iterations[i] = outcome.iterations
        queries[i] = oracle.used(i) - before
        offset = int(queries[i]) - outcome.queries  # start-video checks precede the loop's own queries
        trace.append([(q + offset, p, s) for q, p, s in outcome.trace])
        stops.append(outcome.stop)
        final_eps.append(outcome.final_eps)
        step_sizes.append(outcome.step_size)
    shared: dict[str, Any] = {
        "eps": eps,
        "tentative": tentative,
        "image_models": ",".join(_model_name(m) for m in image_models) if tentative == "transferred" else None,
        "feature_layer": feature_layer if tentative == "transferred" else None,
        "mask_prob": mask_prob if tentative == "transferred" else None,
        "partition": partition,
        "patches": patches,
        "grid_shift": grid_shift and partition == "uniform",
        "estimator": estimator,
        "population": population,
        "sigma": sigma,
        "momentum": momentum,
        "fold_reads": fold_reads,
        "grid_refinements": grid_refinements,
        **{f"seconds_{key}": value for key, value in seconds.items()},
    }
    extras = video_extras(
        n, shared, stop_reason=stops, final_eps=final_eps, final_step_size=step_sizes,
        final_population=populations, final_patches=grids,
    )  # fmt: skip
    return AttackResult(
        adversarial=adversarial,
        success=success,
        queries=queries,
        iterations=iterations,
        label=labels,
        target=targets,
        adv_label=adv_label,
        seconds=time.perf_counter() - start_time,
        trace=trace,
        extras=extras,
        method="vbad",
    )


def _search_radii(start_search: tuple[float, ...] | None, eps: float) -> list[float] | None:
    """The radii of ``start_search`` (multiples of ``eps``)."""
    if start_search is None:
        return None
    factors = list(start_search)
    if not factors or not all(isinstance(f, (int, float)) and f > 0 for f in factors):
        raise ValueError(f"start_search must be positive multiples of eps, e.g. (2, 3, 4, 6), got {start_search!r}")
    return [eps * float(f) for f in factors]


def _model_name(model: nn.Module) -> str:
    return str(getattr(model, "name", None) or type(model).__name__)


def _select_start(
    oracle: ScoreOracle,
    candidates: Tensor,
    target: int,
    owner: int,
    clean: Tensor,
    radii: Sequence[float] | None = None,
    region: Tensor | None = None,
) -> tuple[Tensor | None, float | None]:
    """The start of Alg. 1 among ``candidates [M,T,C,H,W]`` (every read a counted query).

    ``radii=None``: the first candidate the oracle classifies as ``target``, read one at a time.
    Otherwise every candidate, unprojected and projected around ``clean`` at each radius, is read in
    one batched call of ``M * (len(radii) + 1)`` queries, and the candidate that keeps the target at
    the smallest radius wins (ties: the higher target probability). Falls back to the first rule when
    the budget cannot pay for the batch.

    Returns ``(start [1,T,C,H,W], radius)`` (``radius`` ``None``: unprojected), or ``(None, None)``
    when no candidate (or no budget) is left.
    """
    candidates = candidates.to(clean.device, clean.dtype)
    if radii:
        bounds = [float("inf"), *sorted(radii, reverse=True)]
        batch = torch.cat([project_towards(clean, candidates, bound, region) for bound in bounds])
        try:
            answer = oracle.query(batch, owner=owner)
        except QueryBudgetExceeded:
            pass  # not enough budget for the batch: try the candidates one by one
        else:
            kept = (answer.labels[:, 0] == target).reshape(len(bounds), -1)
            probs = answer.probs[:, 0].reshape(len(bounds), -1)
            for rank in reversed(range(len(bounds))):  # smallest radius first
                survivors = kept[rank].nonzero().flatten()
                if survivors.numel():
                    j = int(survivors[probs[rank, survivors].argmax()])
                    return candidates[j : j + 1], None if rank == 0 else bounds[rank]
            return None, None
    for j in range(candidates.shape[0]):
        try:
            answer = oracle.query(candidates[j : j + 1], owner=owner)
        except QueryBudgetExceeded:
            break
        if int(answer.labels[0, 0]) == target:
            return candidates[j : j + 1], None
    return None, None
