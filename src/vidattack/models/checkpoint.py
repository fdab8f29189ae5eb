"""Saving and loading models without executing code.

A vidattack checkpoint is a pair of files with a common stem:

* ``STEM.safetensors`` -- every tensor of the wrapped model (network weights and the normalisation
  buffers), in the safetensors format, which holds tensors only;
* ``STEM.json`` -- what rebuilds the model: ``arch`` and ``arch_kwargs`` (for
  :func:`vidattack.models.registry.build`), class names, input frames / height / width, normalisation,
  and descriptive fields (training data, accuracy, vidattack version). The same JSON is also stored in
  the safetensors header, so a lone ``.safetensors`` file is enough.

Foreign weights (``.pt`` / ``.pth``, e.g. torchvision's Kinetics-400 files) are read with
``torch.load(..., weights_only=True)``: a pickle that would run code is rejected with
:class:`UnsafeCheckpointError` before anything in it executes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from vidattack import __version__
from vidattack.models.image import ImageBackbone
from vidattack.models.weights import UnsafeCheckpointError, load_state_dict_file, load_state_dict_into
from vidattack.models.wrapper import VideoClassifier

__all__ = [
    "save",
    "load",
    "read_metadata",
    "load_state_dict_file",
    "load_state_dict_into",
    "UnsafeCheckpointError",
    "FORMAT",
    "exists",
    "RESERVED_FIELDS",
]

FORMAT = "vidattack-model"
FORMAT_VERSION = 1
_HEADER_KEY = "vidattack"
# Fields of the JSON that describe the model itself; user metadata may not override them.
RESERVED_FIELDS = (
    "format",
    "format_version",
    "kind",
    "arch",
    "arch_kwargs",
    "class_names",
    "input",
    "normalisation",
)

Model = VideoClassifier | ImageBackbone


def _stem(path: str | Path) -> Path:
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".json", ".safetensors") else path


def _with(stem: Path, extension: str) -> Path:
    # Not Path.with_suffix: a stem such as "c3d.v2" has a dot that is part of the name.
    return Path(f"{stem}{extension}")


def exists(path: str | Path) -> bool:
    """Whether ``path`` names a checkpoint or weights file (``STEM``, ``STEM.json``, any existing file)."""
    stem = _stem(path)
    return Path(path).is_file() or _with(stem, ".json").is_file() or _with(stem, ".safetensors").is_file()


def save(model: Model, path_stem: str | Path, metadata: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``STEM.safetensors`` and ``STEM.json`` for a wrapped model.

    Args:
        model: a :class:`VideoClassifier` or :class:`ImageBackbone` built by the registry.
        path_stem: the path without extension (a ``.json`` / ``.safetensors`` suffix is dropped).
        metadata: descriptive JSON-serialisable fields stored alongside (e.g. ``name``, ``task``,
            ``training``, ``accuracy``); they may not override the model's own fields (``arch``, ...).

    Returns:
        The paths of the safetensors and JSON files.
    """
    from safetensors.torch import save_file

    if not isinstance(model, (VideoClassifier, ImageBackbone)):
        raise ValueError(f"model must be a VideoClassifier or ImageBackbone, got {type(model).__name__}")
    extra = dict(metadata or {})
    clashes = sorted(set(extra) & set(RESERVED_FIELDS))
    if clashes:
        raise ValueError(f"metadata may not set the model's own fields {clashes}")
    document: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **model.metadata(),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "vidattack_version": __version__,
        **extra,
    }
    text = json.dumps(document, indent=2, sort_keys=False)
    stem = _stem(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        name: tensor.detach().to("cpu").contiguous().clone() for name, tensor in model.state_dict().items()
    }
    weights_path, json_path = _with(stem, ".safetensors"), _with(stem, ".json")
    save_file(tensors, str(weights_path), metadata={_HEADER_KEY: json.dumps(document, sort_keys=True)})
    json_path.write_text(text + "\n", encoding="utf-8")
    # safetensors creates its file owner-only; give it the permissions the JSON got from the umask.
    weights_path.chmod(json_path.stat().st_mode & 0o777)
    return weights_path, json_path


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON document of a vidattack checkpoint (``STEM``, ``STEM.json`` or ``STEM.safetensors``)."""
    stem = _stem(path)
    json_path = _with(stem, ".json")
    if json_path.is_file():
        return _document(json_path.read_bytes(), f"checkpoint JSON '{json_path}'")
    weights_path = _with(stem, ".safetensors")
    if weights_path.is_file():
        from safetensors import safe_open

        try:
            with safe_open(str(weights_path), framework="pt") as handle:
                header = (handle.metadata() or {}).get(_HEADER_KEY)
        except Exception as error:  # safetensors raises its own SafetensorError for a damaged file
            raise ValueError(f"cannot read weights file '{weights_path}': {error}") from None
        if header is not None:
            return _document(header.encode("utf-8"), f"the metadata of '{weights_path}'")
        raise ValueError(f"{weights_path} has no vidattack metadata (no {json_path.name}); pass arch=...")
    raise ValueError(f"no checkpoint at {path}: expected {json_path} or {weights_path}")


def _document(raw: bytes, where: str) -> dict[str, Any]:
    """A checkpoint's JSON document from ``raw`` bytes; ``ValueError`` naming ``where`` otherwise."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{where} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise ValueError(f"{where} must hold a JSON object, got {type(document).__name__}")
    return document


def load(
    path: str | Path,
    *,
    arch: str | None = None,
    arch_kwargs: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
) -> Model:
    """Load a model in eval mode from a vidattack checkpoint or a foreign weights file.

    Args:
        path: ``STEM`` / ``STEM.json`` / ``STEM.safetensors`` of a checkpoint written by :func:`save`;
            or a ``.pt`` / ``.pth`` / bare ``.safetensors`` state dict, which needs ``arch``.
        arch: registry name to build for a foreign file (ignored for vidattack checkpoints unless
            the file has no metadata).
        arch_kwargs: keyword arguments for :func:`vidattack.models.registry.build` (e.g.
            ``{"num_classes": 400}``) for a foreign file. Its keys may name the network's own
            parameters (torchvision layout) or the wrapper's (``net.`` prefix).
        device: where to put the model (default: CPU).

    Raises:
        UnsafeCheckpointError: a pickle that would execute code.
        ValueError: missing files, unknown arch, or weights that do not fit.
    """
    from vidattack.models import registry

    path = Path(path)
    is_foreign = path.suffix in (".pt", ".pth", ".bin", ".ckpt")
    if not is_foreign:
        try:
            document = read_metadata(path)
        except ValueError:
            if arch is None or not _with(_stem(path), ".safetensors").is_file():
                raise
            is_foreign, path = True, _with(_stem(path), ".safetensors")
    if is_foreign:
        if arch is None:
            raise ValueError(
                f"{path} holds bare weights: pass the architecture (arch=..., `vidattack attack --arch`), or make "
                f"it a checkpoint every command takes: vidattack import-model {path} --arch ARCH --out STEM"
            )
        model = registry.build(arch, **dict(arch_kwargs or {}))
        state = load_state_dict_file(path)
        if all(key.startswith("net.") or key in ("mean", "std") for key in state):
            load_state_dict_into(model, {**model.state_dict(), **state}, source=path)
        else:
            load_state_dict_into(model.net, state, source=path)
    else:
        if document.get("format") != FORMAT:
            raise ValueError(
                f"{path} is not a vidattack model checkpoint (format {document.get('format')!r})"
            )
        try:
            model = _build_from_document(document, registry)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise ValueError(f"cannot build the model described by checkpoint '{path}': {error}") from None
        from safetensors.torch import load_file

        weights = _with(_stem(path), ".safetensors")
        if not weights.is_file():
            raise ValueError(f"checkpoint weights not found: {weights}")
        try:
            state = load_file(str(weights), device="cpu")
        except Exception as error:  # safetensors' SafetensorError for a truncated or damaged file
            raise ValueError(f"cannot read weights file '{weights}': {error}") from None
        load_state_dict_into(model, state, source=weights)
        model.checkpoint_metadata = document
    model.eval()
    if device is not None:
        model.to(device)
    return model


def _build_from_document(document: dict[str, Any], registry: Any) -> Model:
    arch_kwargs = dict(document.get("arch_kwargs") or {})
    info = document.get("input") or {}
    size = (info.get("height"), info.get("width"))
    norm = document.get("normalisation") or {}
    kwargs: dict[str, Any] = {
        "class_names": document.get("class_names"),
        "input_size": tuple(size) if None not in size else None,
        "mean": norm.get("mean"),
        "std": norm.get("std"),
    }
    if document.get("kind") != "image":
        kwargs["num_frames"] = info.get("frames")
    if kwargs["class_names"] is not None:
        arch_kwargs.pop("num_classes", None)
    return registry.build(document["arch"], **kwargs, **arch_kwargs)
