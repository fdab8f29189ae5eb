"""What the server knows about each model it serves: the callable and its declared input and output."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch

__all__ = ["ServedModel", "Reveal"]

Reveal = Literal["top-k", "probabilities", "logits"]


@dataclass
class ServedModel:
    """A model behind ``/v2/models/{name}``.

    Args:
        name: the model's name in URLs (letters, digits, ``-``, ``_``, ``.``).
        model: a callable from ``[N,T,C,H,W]`` float32 in [0, 1] to logits ``[N,K]``.
        frames, channels, height, width: the one clip shape the model accepts; requests are checked
            against it before their body is read.
        num_classes: K (``None``: learnt from one forward pass of a blank clip at start-up).
        class_names: optional names of the K classes (revealed in the metadata and in
            classification answers).
        reveal: what an answer shows: the ``"top-k"`` classes with their probabilities (the
            classification extension, always, at most ``top_k``), the full ``"probabilities"``, or
            the raw ``"logits"``.
        top_k: the most classes a ``"top-k"`` answer reveals.
    """

    name: str
    model: Any
    frames: int
    height: int
    width: int
    channels: int = 3
    num_classes: int | None = None
    class_names: list[str] | None = None
    reveal: Reveal = "top-k"
    top_k: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name):
            raise ValueError(f"name must be letters, digits, '-', '_' or '.', got {self.name!r}")
        for what in ("frames", "height", "width", "channels"):
            value = getattr(self, what)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{what} must be a positive int, got {value!r}")
        if self.reveal not in ("top-k", "probabilities", "logits"):
            raise ValueError(f"reveal must be 'top-k', 'probabilities' or 'logits', got {self.reveal!r}")
        if not isinstance(self.top_k, int) or self.top_k < 1:
            raise ValueError(f"top_k must be a positive int, got {self.top_k!r}")
        if isinstance(self.model, torch.nn.Module):
            self.model.eval()
            for tensor in self.model.parameters():
                self.device = tensor.device
                break
        if self.class_names is not None:
            self.class_names = [str(n) for n in self.class_names]
            self.num_classes = self.num_classes or len(self.class_names)
        if self.num_classes is None:
            with torch.inference_mode():
                blank = torch.zeros(1, self.frames, self.channels, self.height, self.width, device=self.device)
                self.num_classes = int(self.model(blank).shape[1])
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names has {len(self.class_names)} names for {self.num_classes} classes")

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        """``(T, C, H, W)`` of one clip."""
        return (self.frames, self.channels, self.height, self.width)

    @property
    def output_name(self) -> str:
        return "logits" if self.reveal == "logits" else "probabilities"

    @classmethod
    def from_model(cls, name: str, model: Any, **overrides: Any) -> ServedModel:
        """Read the clip shape and class names from a loaded vidattack model (zoo or checkpoint).

        Raises:
            ValueError: the model does not record its input shape and none was given.
        """
        size = getattr(model, "input_size", None)
        document = getattr(model, "checkpoint_metadata", None) or {}
        mean = (document.get("normalisation") or {}).get("mean")
        declared: dict[str, Any] = {
            "frames": getattr(model, "num_frames", None),
            "height": size[0] if size else None,
            "width": size[1] if size else None,
            "channels": len(mean) if isinstance(mean, list) and mean else 3,
            "class_names": getattr(model, "class_names", None),
        }
        declared.update({k: v for k, v in overrides.items() if v is not None})
        missing = [k for k in ("frames", "height", "width") if not declared.get(k)]
        if missing:
            raise ValueError(f"model {name!r} does not record its input {', '.join(missing)}; give them explicitly")
        return cls(name=name, model=model, **declared)
