"""Diagnostics that need white-box access to the target *for evaluation only* (never inside an attack).

V-BAD's Table 5 (Jiang et al. 2019, Sec. 4.4) measures the quality of gradient estimates as the cosine
similarity between the true adversarial gradient and (a) each kind of tentative perturbation, (b) the
rectified estimates of SR-BAD, P-BAD and V-BAD. :func:`vbad_gradient_quality` reproduces it: the true
gradient comes from a :class:`~vidattack.threat.WhiteBox` on the target, the estimates from the same
code the attacks run (:class:`~vidattack.attacks.vbad.VBADEstimator` through a top-1
:class:`~vidattack.threat.ScoreOracle`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from vidattack.attacks.vbad import VBADConfig, VBADEstimator
from vidattack.io import load_toml
from vidattack.methods.attacker_data import SyntheticAttackerData
from vidattack.methods.model_refs import load_image_models
from vidattack.metrics import gradient_cosine
from vidattack.priors.tentative import make_tentative
from vidattack.selection import first_correct_per_class
from vidattack.threat import ScoreOracle, WhiteBox
from vidattack.video import validate_label, validate_video

__all__ = ["gradient_cosine", "true_adversarial_gradient", "vbad_gradient_quality", "VARIANTS"]

#: The rectified estimators of Table 5 as V-BAD settings (Sec. 4.3); ``vbad`` with vidattack's defaults
#: (first-block features, masks kept with probability 0.1, a shifted grid), ``vbad-paper`` as written.
VARIANTS: dict[str, dict[str, Any]] = {
    "srbad": {"tentative": "static", "partition": "random", "population": 48},
    "pbad": {"tentative": "static", "partition": "pixel", "population": 96},
    "vbad": {"tentative": "transferred", "partition": "uniform", "population": 48},
    "vbad-paper": {
        "tentative": "transferred",
        "partition": "uniform",
        "population": 48,
        # the estimator-side settings of V-BAD as written (the loop-side ones play no part in one estimate)
        **{k: v for k, v in VBADConfig.paper().as_params().items() if k in ("feature_layer", "mask_prob", "grid_shift")},
    },
}


def true_adversarial_gradient(
    model: WhiteBox, videos: Tensor, label: Tensor, target: Tensor | None = None
) -> Tensor:
    """The white-box gradient ``[N,T,C,H,W]`` of the objective V-BAD ascends.

    Untargeted ``-P(label | x)``, targeted ``P(target | x)``; computed as the gradient of
    ``-log P(label)`` / ``log P(target)``, which points the same way for each video and does not vanish
    numerically when the probability saturates.
    """
    cls = label if target is None else target
    sign = -1.0 if target is None else 1.0
    _, grad = model.gradient(
        videos, lambda z: sign * torch.log_softmax(z, dim=1).gather(1, cls.reshape(-1, 1)).squeeze(1)
    )
    return grad


def vbad_gradient_quality(
    model: torch.nn.Module,
    videos: Tensor,
    label: Tensor | int | Sequence[int],
    *,
    target: Tensor | int | Sequence[int] | None = None,
    tentatives: Sequence[str] = ("static", "random", "transferred"),
    variants: Sequence[str] = ("srbad", "pbad", "vbad"),
    image_models: Sequence[str] | None = None,
    patches: int = 8,
    sigma: float | None = None,
    repeats: int = 5,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """Table 5: mean cosine between the true gradient and tentative / rectified estimates at ``videos``.

    Args:
        model: the target (a plain model: used white-box for the true gradient and behind a top-1
            score oracle for the estimates).
        videos: ``[N,T,C,H,W]`` in [0, 1], the points where gradients are compared (the paper uses
            points along attacks; passing clean videos measures the first step).
        label, target: as in :func:`vidattack.attacks.vbad.vbad` (``target=None``: untargeted).
        tentatives: tentative kinds of row (a) (the transferred one with V-BAD's default feature layer
            and masks).
        variants: rectified estimators of row (b), keys of :data:`VARIANTS`.
        image_models: references of the transferred tentative's image models (default: the test bed's
            two image backbones, for the zoo's models).
        patches, sigma: as in V-BAD (sigma default 1e-3 untargeted, 1e-6 targeted).
        repeats: independent draws per video (the paper: 20 runs).
        generator: randomness of the estimates.

    Returns:
        ``{"tentative": {kind: mean cosine}, "rectified": {variant: mean cosine},
        "tentative_std": ..., "rectified_std": ..., "queries": queries spent on estimates}``.
    """
    defaults = VBADConfig().as_params()

    validate_video(videos, "videos")
    n = videos.shape[0]
    labels = validate_label(label, n)
    targets = None if target is None else validate_label(target, n, name="target")
    sigma = (1e-6 if targets is not None else 1e-3) if sigma is None else sigma
    models = load_image_models(
        list(image_models) if image_models is not None else list(SyntheticAttackerData.image_models)
    )
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"variants must be among {sorted(VARIANTS)}, got {unknown}")
    white = WhiteBox(model)
    true = true_adversarial_gradient(white, videos, labels, targets)
    oracle = ScoreOracle(model, top_k=1)
    shape = tuple(videos.shape[1:])
    tentative_scores: dict[str, list[float]] = {kind: [] for kind in tentatives}
    rectified_scores: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(n):
        cls = int(labels[i] if targets is None else targets[i])
        video = videos[i : i + 1]
        for kind in tentatives:
            tentative = make_tentative(
                kind, image_models=models, layer=defaults["feature_layer"], mask_prob=defaults["mask_prob"],
                generator=generator,
            )  # fmt: skip
            for _ in range(repeats):
                score = gradient_cosine(tentative(video[0]).unsqueeze(0), true[i : i + 1])
                tentative_scores[kind].append(float(score[0]))
        for name in variants:
            setting = {**defaults, **VARIANTS[name]}
            estimator = VBADEstimator(
                oracle, shape, cls, targeted=targets is not None, tentative=setting["tentative"],
                image_models=models, feature_layer=setting["feature_layer"], mask_prob=setting["mask_prob"],
                reference_video=None, partition=setting["partition"], patches=patches, num_parts=None,
                grid_shift=setting["grid_shift"], estimator="nes", population=setting["population"],
                sigma=sigma, generator=generator, device=videos.device,
            )  # fmt: skip
            for _ in range(repeats):
                rectified_scores[name].append(float(gradient_cosine(estimator(video, 0), true[i : i + 1])[0]))

    def summary(scores: dict[str, list[float]]) -> tuple[dict[str, float], dict[str, float]]:
        means = {k: float(torch.tensor(v).mean()) if v else float("nan") for k, v in scores.items()}
        stds = {k: float(torch.tensor(v).std()) if len(v) > 1 else float("nan") for k, v in scores.items()}
        return means, stds

    tentative_mean, tentative_std = summary(tentative_scores)
    rectified_mean, rectified_std = summary(rectified_scores)
    return {
        "tentative": tentative_mean,
        "tentative_std": tentative_std,
        "rectified": rectified_mean,
        "rectified_std": rectified_std,
        "samples": n * repeats,
        "queries": oracle.queries,
    }


def correctly_classified_per_class(
    model: torch.nn.Module, videos: Tensor, labels: Tensor, per_class: int = 1
) -> tuple[Tensor, Tensor]:
    """The first ``per_class`` videos of each class that ``model`` classifies correctly (for evaluation)."""
    index = first_correct_per_class(model, videos, labels, per_class)
    return videos[index], labels[index]


def _main(argv: list[str] | None = None) -> None:
    """``python -m vidattack.evaluation.diagnostics CONFIG.toml``: Table 5 on the test bed (markdown to stdout)."""
    import argparse

    from vidattack import models as zoo
    from vidattack.data.synthetic import SynthConfig, generate

    parser = argparse.ArgumentParser(description=_main.__doc__)
    parser.add_argument(
        "config", help="TOML with models, split, per_class, repeats, tentatives, variants, image_models, bed"
    )
    args = parser.parse_args(argv)
    config = load_toml(args.config)
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(int(config.get("seed", 0)))
    tentatives = tuple(config.get("tentatives", ("static", "random", "transferred")))
    variants = tuple(config.get("variants", ("srbad", "pbad", "vbad")))
    # bed = "scene" in the TOML measures on the scene test bed (with its image models as priors).
    bed = SynthConfig(bed=str(config.get("bed", "motion")))
    clips = generate(config.get("split", "test"), bed, indices=range(int(config.get("pool", 100))))
    header = "| model | " + " | ".join(f"tentative {k}" for k in tentatives) + " | "
    header += " | ".join(f"rectified {v}" for v in variants) + " |"
    print(header)
    print("|" + "---|" * (1 + len(tentatives) + len(variants)))
    for name in config["models"]:
        model = zoo.load(name).eval()
        videos, labels = correctly_classified_per_class(
            model, clips.videos, clips.labels, int(config.get("per_class", 1))
        )
        quality = vbad_gradient_quality(
            model, videos, labels, tentatives=tentatives, variants=variants,
            image_models=config.get("image_models"), repeats=int(config.get("repeats", 5)),
            generator=generator,
        )  # fmt: skip
        cells = [f"{quality['tentative'][k]:.3e}" for k in tentatives]
        cells += [f"{quality['rectified'][v]:.3e}" for v in variants]
        print(f"| {name} (n={quality['samples']}) | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    _main()
