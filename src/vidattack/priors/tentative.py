"""Tentative perturbations: the rough, pixel-wise guess of the adversarial gradient that V-BAD rectifies.

V-BAD (Jiang et al. 2019, Sec. 3.3) defines a tentative perturbation as *sign values* (1, 0 or -1),
recomputed for the current adversarial video before every rectification. Three kinds:

* ``"static"``: every dimension 1 (:func:`tentative_static`);
* ``"random"``: every dimension +1 or -1 with probability 1/2, redrawn at every call
  (:func:`tentative_random`);
* ``"transferred"``: Eq. 3, from a white-box attack on one or more *image* models
  (:class:`TransferredTentative`)::

      h(x) = sign( grad_x 1/T sum_t || M_t o f_I^l(x_t) - M_t o R_t ||_2^2 )

  ``f_I^l`` a feature layer of the image model applied frame by frame (V-BAD's default is each model's
  *first* block, see :class:`TransferredTentative`), ``M_t`` a random 0/1 mask over
  the elements of frame ``t``'s feature map (each element kept with probability 1/2, redrawn at every
  call), ``R_t`` the target feature map: for an untargeted attack the features of a Gaussian-noise frame,
  for a targeted one the features of frame ``t`` of a video of the target class. With an ensemble the
  per-model signs are averaged ("we average the perturbation extracted from the three image models",
  Sec. 4.1), so values lie in [-1, 1]; ties of an even ensemble (a 0 average) are broken by the sign
  of the models' summed, per-model normalised gradients, so that no pixel is frozen.

Only the image models are accessed white-box: the target video model is never touched here. The sign of
``h`` does not matter to V-BAD, whose rectification factors may be negative.

All tentative perturbations take the current video ``[T, C, H, W]`` (or ``[1, T, C, H, W]``) in [0, 1]
and return a tensor of the same shape, dtype and device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "TENTATIVES",
    "Tentative",
    "tentative_static",
    "tentative_random",
    "TransferredTentative",
    "feature_loss_gradient",
    "prepare_image_models",
    "make_tentative",
]

TENTATIVES = ("static", "random", "transferred")

#: A tentative perturbation: current video ``[T,C,H,W]`` or ``[1,T,C,H,W]`` -> values in [-1, 1], same shape.
Tentative = Callable[[Tensor], Tensor]


def tentative_static(video: Tensor) -> Tensor:
    """All ones (Sec. 3.3, "Static"; P-BAD and SR-BAD, Sec. 4.3)."""
    return torch.ones_like(video)


def tentative_random(video: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Each dimension +1 or -1 with probability 1/2, drawn from ``generator`` (Sec. 3.3, "Random")."""
    bits = torch.randint(0, 2, video.shape, generator=generator, dtype=torch.int8)
    return (bits.to(device=video.device, dtype=video.dtype) * 2 - 1).contiguous()


def prepare_image_models(
    models: Sequence[nn.Module] | nn.Module, device: torch.device | str | None = None
) -> list[nn.Module]:
    """Image models for transferred perturbations, moved to ``device``, in eval mode with frozen weights.

    Each is an :class:`~vidattack.models.ImageBackbone` or any module with
    ``features(images, layer=None)`` (the paper's ensemble is ResNet-50, DenseNet-121 and DenseNet-169,
    Sec. 4.1). Names and paths are resolved by the methods layer
    (:func:`vidattack.methods.model_refs.load_image_models`), never here.
    """
    if isinstance(models, nn.Module):
        models = [models]
    resolved: list[nn.Module] = []
    for entry in models:
        if not isinstance(entry, nn.Module):
            raise ValueError(
                f"image models must be modules (load names with vidattack.methods.model_refs), got {entry!r}"
            )
        module = entry.to(device) if device is not None else entry
        if not callable(getattr(module, "features", None)):
            raise ValueError(
                f"image model {type(entry).__name__} has no features(images, layer) method (not an image backbone)"
            )
        module.eval()
        for parameter in module.parameters():
            parameter.requires_grad_(False)
        resolved.append(module)
    if not resolved:
        raise ValueError("a transferred tentative perturbation needs at least one image model")
    return resolved


def feature_loss_gradient(
    model: nn.Module, frames: Tensor, reference: Tensor, mask: Tensor, layer: str | None = None
) -> Tensor:
    """Gradient ``[T,C,H,W]`` of Eq. 3's loss ``1/T sum_t ||M_t o (f(x_t) - R_t)||^2`` w.r.t. ``frames``.

    Args:
        model: image model with ``features(images [B,C,H,W], layer) -> [B, ...]``.
        frames: ``[T, C, H, W]`` in [0, 1].
        reference: ``R``, same shape as ``model.features(frames, layer)``.
        mask: ``M``, 0/1, same shape as ``reference``.
    """
    inputs = frames.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        features = _features(model, inputs, layer)
        if features.shape != reference.shape:
            raise ValueError(
                f"reference features must have shape {tuple(features.shape)} (the image model's features of "
                f"the frames), got {tuple(reference.shape)}"
            )
        # d loss / d features = 2/T * M^2 o (f - R), handed to one backward pass through the image
        # model (cheaper than differentiating the squared norm itself).
        upstream = (mask * mask * (features.detach() - reference)) * (2.0 / frames.shape[0])
        (grad,) = torch.autograd.grad(features, inputs, grad_outputs=upstream)
    return grad


class TransferredTentative:
    """Eq. 3's transferred tentative perturbation from one image model or an ensemble (Sec. 3.3, 4.1).

    Args:
        image_models: image backbones (see :func:`prepare_image_models`).
        reference_video: ``[T, C, H, W]`` (or ``[1, T, C, H, W]``) video of the target class for a
            targeted attack (``R_t = f(x'_t)``); ``None`` for untargeted, where ``R_t`` are the features of
            Gaussian-noise frames (``N(0.5, 0.25^2)`` clipped to [0, 1]), drawn once on the first call so
            that successive steps push towards the same feature target.
        layer: feature layer ``l`` of every image model: a stage name (``"block1"``, ``"layer2"``, ...),
            ``"first"`` for each model's first stage (its first convolutional block), or ``None`` for
            each model's ``default_layer`` (its last convolutional block). The paper leaves ``l`` open
            ("e.g. feature layer"); on the test bed the first block transfers best (its best-possible
            rectification has cosine 0.32 with c3d-synth's gradient, against 0.19 for the last block
            and 0.24 for the static perturbation: benchmarks/results_vbad.md), so V-BAD uses ``"first"``.
        mask_prob: probability that an element of ``M_t`` is 1 (the paper's masks are 1 or 0 at random:
            1/2). ``1.0`` disables the mask.
        generator: randomness for masks and noise frames.

    Calling it with the current video ``[T,C,H,W]`` or ``[1,T,C,H,W]`` returns the mean over models of
    the signed gradients (values in [-1, 1]), same shape; where an even ensemble ties (mean 0), the sign
    of the pooled per-model normalised gradients divided by the number of models.
    """

    def __init__(
        self,
        image_models: Sequence[nn.Module] | nn.Module,
        *,
        reference_video: Tensor | None = None,
        layer: str | None = None,
        mask_prob: float = 0.5,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if not 0.0 < mask_prob <= 1.0:
            raise ValueError(f"mask_prob must be in (0, 1], got {mask_prob}")
        self.models = prepare_image_models(image_models, device)
        self.layers = [_resolve_layer(model, layer) for model in self.models]
        self.mask_prob = float(mask_prob)
        self.generator = generator
        self.reference_video = (
            None if reference_video is None else _frames(reference_video, "reference_video")
        )
        self._references: list[Tensor] | None = None

    def _build_references(self, frames: Tensor) -> list[Tensor]:
        source = self.reference_video
        if source is None:
            noise = torch.randn(frames.shape, generator=self.generator, dtype=torch.float32)
            source = (0.5 + 0.25 * noise).clamp(0.0, 1.0)
        elif source.shape != frames.shape:
            raise ValueError(
                f"reference_video must have the attacked video's shape {tuple(frames.shape)}, "
                f"got {tuple(source.shape)}"
            )
        source = source.to(device=frames.device, dtype=frames.dtype)
        with torch.no_grad():
            return [
                _features(model, source, layer).detach()
                for model, layer in zip(self.models, self.layers, strict=True)
            ]

    def __call__(self, video: Tensor) -> Tensor:
        frames = _frames(video, "video")
        if self._references is None:
            self._references = self._build_references(frames)
        total = torch.zeros_like(frames)
        pooled = torch.zeros_like(frames)
        for model, layer, reference in zip(self.models, self.layers, self._references, strict=True):
            if self.mask_prob < 1.0:
                mask = torch.rand(reference.shape, generator=self.generator) < self.mask_prob
                mask = mask.to(device=reference.device, dtype=reference.dtype)
            else:
                mask = torch.ones_like(reference)
            gradient = feature_loss_gradient(model, frames, reference, mask, layer)
            total += gradient.sign()
            scale = gradient.abs().mean()
            pooled += gradient / scale if float(scale) > 0 else gradient
        # An even ensemble ties wherever its models disagree (about half the pixels for two models), and
        # a 0 there would freeze those pixels for the step: break ties by the sign of the ensemble's
        # pooled (per-model normalised) gradient, at the weight of one model's vote.
        total = torch.where(total == 0, pooled.sign(), total)
        return (total / len(self.models)).reshape(video.shape)


def _resolve_layer(model: nn.Module, layer: str | None) -> str | None:
    """``layer`` for ``model``, with ``"first"`` replaced by the name of the model's first stage."""
    if layer != "first":
        return layer
    names = getattr(model, "feature_layers", None)
    if not names:
        raise ValueError(
            f"feature layer 'first' needs an image backbone that lists its feature_layers; "
            f"{type(model).__name__} does not: name the layer instead"
        )
    return str(names[0])


def _features(model: nn.Module, frames: Tensor, layer: str | None) -> Tensor:
    return model.features(frames, layer) if layer is not None else model.features(frames)


def _frames(video: Tensor, name: str) -> Tensor:
    if (
        not isinstance(video, Tensor)
        or video.dim() not in (4, 5)
        or (video.dim() == 5 and video.shape[0] != 1)
    ):
        shape = tuple(video.shape) if isinstance(video, Tensor) else type(video).__name__
        raise ValueError(f"{name} must be one video [T, C, H, W] or [1, T, C, H, W], got {shape}")
    return video.reshape(video.shape[-4:]).detach()


def make_tentative(
    kind: str,
    *,
    image_models: Sequence[nn.Module] | nn.Module | None = None,
    reference_video: Tensor | None = None,
    layer: str | None = None,
    mask_prob: float = 0.5,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tentative:
    """A tentative perturbation by name: ``"static"``, ``"random"`` or ``"transferred"`` (Sec. 3.3).

    ``image_models``, ``reference_video``, ``layer`` and ``mask_prob`` apply to ``"transferred"`` (see
    :class:`TransferredTentative`); ``generator`` drives ``"random"`` and the transferred masks.
    """
    if kind == "static":
        return tentative_static
    if kind == "random":
        return lambda video: tentative_random(video, generator)
    if kind == "transferred":
        if image_models is None or (isinstance(image_models, (list, tuple)) and not image_models):
            raise ValueError(
                "a transferred tentative perturbation needs image models (image_models=[module, ...]); "
                "without any, use tentative='static'"
            )
        return TransferredTentative(
            image_models, reference_video=reference_video, layer=layer, mask_prob=mask_prob,
            generator=generator, device=device,
        )  # fmt: skip
    raise ValueError(f"tentative must be one of {TENTATIVES}, got {kind!r}")
