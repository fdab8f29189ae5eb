"""The models shipped with vidattack (``src/vidattack/zoo/NAME.safetensors`` + ``NAME.json``).

They are small networks trained on the synthetic test bed (:mod:`vidattack.data.synthetic`) by
``scripts/build_zoo.py``; ``MODELS.md`` records how they were made and how well they do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from vidattack.models.checkpoint import Model
from vidattack.models.checkpoint import exists as checkpoint_exists
from vidattack.models.checkpoint import load as load_checkpoint
from vidattack.remote import RemoteModel, is_remote

__all__ = ["ZOO_DIR", "load", "list_models", "model_names", "is_zoo_name"]

ZOO_DIR = Path(__file__).resolve().parent.parent / "zoo"


def model_names(zoo_dir: str | Path | None = None) -> list[str]:
    """Sorted names of the shipped models (those with both a ``.json`` and a ``.safetensors`` file)."""
    directory = Path(zoo_dir) if zoo_dir is not None else ZOO_DIR
    if not directory.is_dir():
        return []
    return sorted(p.stem for p in directory.glob("*.json") if p.with_suffix(".safetensors").is_file())


def list_models(zoo_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """One summary per shipped model, from its JSON metadata.

    Returns:
        Dicts with ``name``, ``arch``, ``kind`` ("video" / "image"), ``task``, ``classes`` (class
        names), ``input_shape`` (``[T, C, H, W]`` for video models, ``[C, H, W]`` for image models),
        ``num_parameters``, ``test_accuracy`` and ``shuffled_test_accuracy`` (None when not recorded).
    """
    directory = Path(zoo_dir) if zoo_dir is not None else ZOO_DIR
    rows = []
    for name in model_names(directory):
        document = json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))
        info = document.get("input") or {}
        channels = len((document.get("normalisation") or {}).get("mean") or [3])
        spatial = [channels, info.get("height"), info.get("width")]
        accuracy = document.get("accuracy") or {}
        rows.append(
            {
                "name": name,
                "arch": document.get("arch"),
                "kind": document.get("kind"),
                "task": document.get("task"),
                "classes": document.get("class_names"),
                "input_shape": spatial if document.get("kind") == "image" else [info.get("frames"), *spatial],
                "num_parameters": document.get("num_parameters"),
                "test_accuracy": accuracy.get("test"),
                "shuffled_test_accuracy": accuracy.get("test_shuffled"),
            }
        )
    return rows


def is_zoo_name(reference: str | Path) -> bool:
    """Whether ``reference`` names a shipped model (and is not a checkpoint path or a URL)."""
    text = str(reference)
    return not is_remote(text) and not checkpoint_exists(reference) and text in model_names()


def load(name_or_path: str | Path, device: str | torch.device | None = None, **kwargs: Any) -> Model:
    """Load a shipped model by name (e.g. ``"c3d-synth"``) or a checkpoint by path, in eval mode.

    An ``http://`` / ``https://`` URL gives a :class:`vidattack.remote.RemoteModel` (black-box only).

    Args:
        name_or_path: a zoo name, or a path accepted by :func:`vidattack.models.checkpoint.load`.
        device: where to put the model (default CPU).
        **kwargs: ``arch`` / ``arch_kwargs`` for foreign weight files (see ``checkpoint.load``).

    Raises:
        ValueError: neither an existing path nor a zoo name; the message lists the zoo's names.
    """
    text = str(name_or_path)
    if is_remote(text):
        return RemoteModel(text)  # type: ignore[return-value]
    if checkpoint_exists(name_or_path):
        return load_checkpoint(name_or_path, device=device, **kwargs)
    names = model_names()
    if text in names:
        return load_checkpoint(ZOO_DIR / text, device=device, **kwargs)
    available = ", ".join(names) if names else "(none shipped)"
    raise ValueError(f"unknown model {text!r}: not a file and not a zoo model; available: {available}")
