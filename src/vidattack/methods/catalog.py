"""Every method vidattack runs by name: one entry per method, with what it needs from the attacker.

Adding a method is one :class:`MethodSpec` here (its core lives in :mod:`vidattack.attacks`).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Literal

import torch

from vidattack.attacks.flicker import flicker
from vidattack.attacks.heuristic import heuristic, shared_budget_oracles
from vidattack.attacks.opt_attack import opt_attack
from vidattack.attacks.pgd import pgd
from vidattack.attacks.sparse_l21 import parse_frame_mask, sparse_l21
from vidattack.attacks.sparse_universal import propagation_attack
from vidattack.attacks.sva import TARGETED_LIMIT, UNTARGETED_LIMIT, sva
from vidattack.attacks.sva_baselines import sva_norl, sva_random, sval, sval_agent, sval_sparsity
from vidattack.attacks.sva_opt import sva_opt
from vidattack.attacks.vbad import PBAD, SRBAD, VBADConfig, vbad
from vidattack.attacks.video_rays import video_rays
from vidattack.attacks.video_square import video_square
from vidattack.methods.attacker_data import AttackerDataRequired
from vidattack.methods.model_refs import load_image_models, split_references
from vidattack.methods.params import Param
from vidattack.methods.spec import Context, MethodSpec, Preset
from vidattack.threat import ScoreOracle

__all__ = ["METHODS"]

# ------------------------------------------------------------------------------------------------
# What the attacker supplies


#: Target-class clips offered to targeted V-BAD as start videos (Alg. 1), per attacked video.
START_CANDIDATES = 5
#: Clips offered to Opt-attack / Heuristic for their initial directions (3 per class of a 10-class set).
INIT_POOL = 30
#: Clips searched for SVA's target videos (targeted episodes).
SVA_TARGET_POOL = 60

_IMAGE_MODELS = Param(
    "image_models", tuple[str, ...] | None, None,
    "comma-separated image models for the prior (zoo names, checkpoints, ARCH=PATH); default: the "
    "attacker data's own (the test bed's for zoo models), else none (static tentative)",
)  # fmt: skip


def _image_models(context: Context) -> list[Any]:
    """The priors' image models: the user's, else the attacker data's, else none (noted)."""
    given = context.values.get("image_models")
    references = split_references(given) if given else []
    if not references and context.attacker_data is not None:
        references = list(context.attacker_data.image_models)
    return load_image_models(references, device=context.videos.device) if references else []


def _start_videos(context: Context) -> dict[str, Any]:
    """Targeted attacks that start inside the target class: candidate clips of each target class."""
    if context.target is None or context.core_values.get("start_video") is not None:
        return {}
    if context.attacker_data is None:
        raise AttackerDataRequired(context.name, "start videos of the target class")
    return {"start_video": [
        context.attacker_data.clips_of_class(int(t), START_CANDIDATES, context.shape, context.generator)
        .to(context.videos.device)
        for t in context.target.reshape(-1)
    ]}  # fmt: skip


def _vbad_supply(context: Context) -> dict[str, Any]:
    out = _start_videos(context)
    if context.core_values.get("tentative", "transferred") == "transferred":
        models = _image_models(context)
        if models:
            out["image_models"] = models
        else:
            out["tentative"] = "static"
            context.notes.append(
                "no image models given: static tentative perturbation (pass --param image_models=... for V-BAD's "
                "transferred prior)"
            )
    return out


_INIT = Param(
    "init", Literal["attacker-data", "random"], "attacker-data",
    "initial directions from the attacker's clips (the papers') or from uniform random videos",
)  # fmt: skip


def _direction_supply(context: Context) -> dict[str, Any]:
    if context.values["init"] == "random":
        context.notes.append("initial directions from uniform random videos (init=random)")
        return {"init_videos": None, "init_labels": None}
    if context.attacker_data is None:
        raise AttackerDataRequired(context.name, "videos of other classes for the initial directions")
    videos, labels = context.attacker_data.pool(INIT_POOL, context.shape)
    return {"init_videos": videos.to(context.videos.device, context.videos.dtype), "init_labels": labels}


_BACKBONE = Param(
    "backbone", str | None, None,
    "image model for the agent's frame features (zoo name, checkpoint, ARCH=PATH); default: the attacker "
    "data's first image model, else pixel features",
)  # fmt: skip


def _ray_starts(context: Context) -> dict[str, Any]:
    """Video RayS: targeted runs start from the attacker's clips of the target class (required);
    untargeted ones add the attacker's clips, when given, to their random sign rays."""
    if context.attacker_data is None:
        if context.target is not None:
            raise AttackerDataRequired(context.name, "clips of the target class to start the search")
        return {}
    videos, labels = context.attacker_data.pool(INIT_POOL, context.shape)
    return {"start_videos": videos.to(context.videos.device, context.videos.dtype), "start_labels": labels}


def _sva_targets(context: Context) -> dict[str, Any]:
    """Target clips for SVA's targeted episodes, from the attacker's data (one attacked video at a time)."""
    if context.target is None or context.target.numel() != 1 or context.core_values.get("target_videos") is not None:
        return {}
    if context.attacker_data is None:
        raise AttackerDataRequired(context.name, "clips of the target class for the targeted episodes")
    clips, labels = context.attacker_data.pool(SVA_TARGET_POOL, context.shape)
    chosen = clips[labels == int(context.target.reshape(-1)[0])]
    return {"target_videos": chosen.to(context.videos.device) if len(chosen) else None}


def _sva_supply(context: Context) -> dict[str, Any]:
    out = _sva_targets(context)
    given = context.values.get("backbone")
    reference = given or (context.attacker_data.image_models[0] if context.attacker_data and
                          context.attacker_data.image_models else None)  # fmt: skip
    if reference:
        out["backbone"] = load_image_models(reference)[0]
    else:
        context.notes.append("no image model given: the agent sees pixel features (pass --param backbone=...)")
    return out


#: SVAL agents trained in this process: (training clips, what the training depends on) -> agent. A
#: campaign attacks many videos with one method; the paper trains the agent once (Sec. 4.3), and
#: training it per video cost about half of each run's time (benchmarks/results_throughput.md).
_SVAL_AGENTS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_SVAL_TRAINING = ("train_epochs", "episodes", "lr", "hidden", "gamma_rep", "gamma_length", "normalize_features")


def _sval_supply(context: Context) -> dict[str, Any]:
    out = _sva_supply(context)
    if context.values["agent_path"]:
        out["agent"] = context.values["agent_path"]
        return out
    if context.attacker_data is None:
        raise AttackerDataRequired(context.name, "a training share of clips for the offline agent, Sec. 4.3")
    sparsity = sval_sparsity(context.core_values.get("sparsity"), context.target is not None)
    training = {k: context.core_values[k] for k in _SVAL_TRAINING if k in context.core_values}
    # the training share: the attacker's clips, never the attacked videos (Sec. 4.3); keyed by content,
    # as each run may build its own attacker-data object
    clips = context.attacker_data.pool(context.values["train_count"], context.shape)[0]
    key = (
        hashlib.sha1(clips.detach().cpu().contiguous().numpy().tobytes()).hexdigest(), tuple(clips.shape),
        sparsity, getattr(out.get("backbone"), "name", None),  # the reference it was loaded from
        context.values["agent_seed"], tuple(sorted(training.items())),
    )  # fmt: skip
    if key not in _SVAL_AGENTS:
        _SVAL_AGENTS[key] = sval_agent(
            clips, out.get("backbone"), sparsity=sparsity, **training,
            generator=torch.Generator().manual_seed(context.values["agent_seed"]),
        ).agent  # fmt: skip
        while len(_SVAL_AGENTS) > 4:
            _SVAL_AGENTS.popitem(last=False)
    out["agent"] = _SVAL_AGENTS[key]
    context.notes.append(
        f"agent trained once per process on {context.values['train_count']} attacker clips "
        f"(agent_seed {context.values['agent_seed']}) and shared by every run with the same settings"
    )
    return out


def _sva_opt_supply(context: Context) -> dict[str, Any]:
    if context.target is not None:
        raise ValueError("sva-opt is untargeted (SVA paper Sec. 4.5.3, Fig. 8)")
    return {**_direction_supply(context), **_sva_supply(context)}


def _sparse_supply(context: Context) -> dict[str, Any]:
    return {"mask": parse_frame_mask(context.values["mask"], context.shape[0], generator=context.generator)}


def _sva_oracle(model: Any, *, budget: int | None, batch_size: int, target: Any) -> ScoreOracle:
    # SVA's query limits (Sec. 3.4) when no budget is given.
    limit = budget if budget is not None else (TARGETED_LIMIT if target is not None else UNTARGETED_LIMIT)
    return ScoreOracle(model, top_k=1, budget=limit, batch_size=batch_size)


def _heuristic_oracles(model: Any, *, budget: int | None, batch_size: int, target: Any) -> Any:
    return shared_budget_oracles(model, budget=budget, batch_size=batch_size)


# ------------------------------------------------------------------------------------------------
# The methods

_VBAD = {"threat": "scores", "kind": "bounded", "core": vbad, "method_params": (_IMAGE_MODELS,),
         "supplied": frozenset({"image_models"}), "supply": _vbad_supply}  # fmt: skip
_SVA = {"threat": "scores", "kind": "bounded", "make_threat": _sva_oracle, "method_params": (_BACKBONE,),
        "supplied": frozenset({"backbone", "agent"}), "supply": _sva_supply}  # fmt: skip
_SVA_FIXED = {**_SVA, "method_params": (), "supplied": frozenset(), "supply": _sva_targets}
_SVA_SUMMARY = "SVA (Wei et al. 2022): RL key-frame agent + NES/FGSM on the key frames"
_DIRECTIONS = {"kind": "minimising", "method_params": (_INIT,), "supplied": frozenset({"init_videos", "init_labels"}),
               "supply": _direction_supply}  # fmt: skip

_SPECS = [
    MethodSpec("pgd", "white-box", "bounded",
               "Projected gradient descent, L-inf or L2, with optional frame/pixel masks (baseline).", pgd),
    MethodSpec("flicker", "white-box", "bounded",
               "Flickering: one RGB offset per frame, margin loss + thickness/roughness (Pony et al. 2021).",
               flicker, default_eps=None),
    MethodSpec("sparse", "white-box", "bounded",
               "Sparse l2,1 (or l2) regularised Adam attack with a temporal frame mask (Wei et al. 2019).",
               sparse_l21, default_eps=None, supplied=frozenset({"mask"}), supply=_sparse_supply,
               method_params=(Param("mask", str, "all", "frames that may change: all, first:K, last:K, "
                                    "random:K, frames:1,5,9"),)),
    MethodSpec("sparse-prop", "white-box", "bounded",
               "Propagation-based sparse attack: perturb only the first N frames (Wei et al. 2019).",
               propagation_attack, default_eps=None),
    MethodSpec("vbad", summary="V-BAD (Jiang et al. 2019): transferred tentative perturbations, partition-rectified "
               "NES, with vidattack's extensions (VBADConfig).", **_VBAD),
    MethodSpec("vbad-paper", summary="V-BAD exactly as written (last-block features, masks 1/2, fixed grid, no "
               "momentum, Alg. 1's single shrink).", preset=Preset(VBADConfig.paper().as_params(),
               "VBADConfig.paper()"), **_VBAD),
    MethodSpec("pbad", summary="P-BAD baseline (V-BAD Sec. 4.3): pixel-wise NES (population 96), static tentative "
               "perturbation.", preset=Preset(PBAD, "V-BAD Sec. 4.3"), **_VBAD),
    MethodSpec("srbad", summary="SR-BAD baseline (V-BAD Sec. 4.3): static tentative perturbation, random partition, "
               "NES.", preset=Preset(SRBAD, "V-BAD Sec. 4.3"), **_VBAD),
    MethodSpec("vsquare", "scores", "bounded", "Video Square Attack: batched random search with squares moving "
               "through blocks of frames, signs steered by a gradient estimate from every answer (top-1 scores, "
               "L-inf; targeted from a target-class start video).", video_square,
               supplied=frozenset({"start_video"}), supply=_start_videos),
    MethodSpec("vrays", "labels", "bounded", "Video RayS (after Chen & Gu 2020): hard-label L-inf attack by "
               "spatio-temporal block flips of a ray's sign vector; stops once within eps.", video_rays,
               preset=Preset({"form": "bounded"}, "success = adversarial within eps"),
               supplied=frozenset({"start_videos", "start_labels"}), supply=_ray_starts),
    MethodSpec("vrays-min", "labels", "minimising", "Video RayS, minimising form: the smallest L-inf distortion "
               "within the budget (extras: linf).", video_rays,
               preset=Preset({"form": "minimising"}, "runs to the budget"),
               supplied=frozenset({"start_videos", "start_labels"}), supply=_ray_starts),
    MethodSpec("vrays-sparse", "labels", "minimising", "Video RayS, minimising form with a MAP phase: the last "
               "half of the budget resets blocks of the perturbation to the clean clip (L-inf up to 0.2; extras: "
               "linf, map, distortion_trace).", video_rays,
               preset=Preset({"form": "minimising", "map_phase": 0.5, "map_linf": 0.2},
                             "benchmarks/results_vrays.md, MAP phase"),
               supplied=frozenset({"start_videos", "start_labels"}), supply=_ray_starts),
    MethodSpec("opt", "labels", summary="Opt-attack (Cheng et al. 2019) for video: boundary-distance minimisation "
               "from top-1 labels.", core=opt_attack, **_DIRECTIONS),
    MethodSpec("heuristic", "scores", summary="Heuristic attack (Wei et al. 2020): Opt-attack on key frames "
               "(Alg. 1) and salient regions.", core=heuristic, make_threat=_heuristic_oracles, **_DIRECTIONS),
    MethodSpec("opt-converge", "labels", summary="Opt-attack run to convergence (the papers' rule and MQ); "
               "map_target is only the success bound.", core=opt_attack,
               preset=Preset({"converge": True}, "Heuristic paper Table 6, SVA Table 3"), **_DIRECTIONS),
    MethodSpec("heuristic-converge", "scores", summary="Heuristic attack run to convergence (the paper's rule and "
               "MQ); map_target is only the success bound.", core=heuristic, make_threat=_heuristic_oracles,
               preset=Preset({"converge": True}, "Heuristic paper Table 6, SVA Table 3"), **_DIRECTIONS),
    MethodSpec("sva", summary=_SVA_SUMMARY + ".", core=sva, **_SVA),
    MethodSpec("sva-rattack", summary=_SVA_SUMMARY + ", reward R_attack only (Table 5).", core=sva,
               preset=Preset({"reward_terms": ("attack",)}, "Table 5"), **_SVA),
    MethodSpec("sva-rattack-rep", summary=_SVA_SUMMARY + ", rewards R_attack + R_rep (Table 5).", core=sva,
               preset=Preset({"reward_terms": ("attack", "rep")}, "Table 5"), **_SVA),
    MethodSpec("sva-signsgd", summary=_SVA_SUMMARY + ", SignSGD estimator (Fig. 9).", core=sva,
               preset=Preset({"estimator": "signsgd"}, "Fig. 9"), **_SVA),
    MethodSpec("sva-signopt", summary=_SVA_SUMMARY + ", Sign-OPT estimator (Fig. 9).", core=sva,
               preset=Preset({"estimator": "sign-opt"}, "Fig. 9"), **_SVA),
    MethodSpec("sva-opt", "labels", "minimising", "SVA_opt (Wei et al. 2022 Sec. 4.5.3, Fig. 8): the Heuristic "
               "attack with SVA's RL agent choosing the key frames instead of Alg. 1; top-1 labels only.", sva_opt,
               method_params=(_INIT, _BACKBONE), supplied=frozenset({"init_videos", "init_labels", "backbone", "agent"}),
               supply=_sva_opt_supply),
    MethodSpec("sva-norl", summary="SVA's 'No RL' baseline: FGSM + NES on all frames (Table 5).", core=sva_norl,
               **_SVA_FIXED),
    MethodSpec("sva-random", summary="SVA with random key frames, best of 5 draws (Fig. 7).", core=sva_random,
               **_SVA_FIXED),
    MethodSpec("sval", summary="SVAL (Wei et al. 2022): offline agent with the sparsity-length reward.", core=sval,
               **{**_SVA, "supply": _sval_supply, "supplied": frozenset({"backbone", "agent", "train_videos"}),
                  "method_params": (_BACKBONE,
                                    Param("agent_path", str, "", "a saved agent (save_agent); default: train one"),
                                    Param("train_count", int, 50, "attacker clips the agent is trained on"),
                                    Param("agent_seed", int, 0, "seed of the agent's offline training (one agent "
                                          "for every attacked video, as in Sec. 4.3)"))}),
]  # fmt: skip

#: name -> spec.
METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in _SPECS}
