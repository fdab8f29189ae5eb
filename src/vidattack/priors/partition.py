"""Partitions of a video's input dimensions into parts ("patches") for V-BAD's rectification.

V-BAD (Jiang et al. 2019, Sec. 3.4) splits the tentative perturbation ``h`` into parts ``G^(i)`` and
estimates one rectification factor ``v_i`` per part, ``g_j = v_i * h_j`` for ``j in G^(i)`` (Eq. 4).
A :class:`Partition` stores this as an index tensor mapping every input dimension of one video
``T*C*H*W`` to its part, so rectification is a gather (``coefficients[..., index] * h``) and a whole
NES population of candidate videos is built with one batched operation.

Three partitions (Sec. 3.4, "Partitioning Methods"):

* :func:`partition_uniform`: each frame cut into a ``k x k`` grid of patches covering all channels
  (default ``8 x 8`` per frame, Sec. 4.1 "V-BAD Setting") -- ``T * k * k`` parts; optionally with the
  grid shifted by an offset (:func:`random_grid_offset`), which V-BAD draws afresh at every step so
  that patch borders do not stay at the same pixels for the whole attack;
* :func:`partition_random`: the dimensions split at random into the same number of (equal-sized,
  generally non-adjacent) parts; the SR-BAD baseline (Sec. 4.3) and Table 2's "Random" partition;
* :func:`partition_pixel`: every input dimension its own part (P-BAD, Sec. 4.3); stored without an
  index tensor (identity).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "Partition",
    "partition_uniform",
    "partition_random",
    "partition_pixel",
    "random_grid_offset",
    "make_partition",
    "PARTITIONS",
]

PARTITIONS = ("uniform", "random", "pixel")


@dataclass(frozen=True)
class Partition:
    """A map from the ``T*C*H*W`` dimensions of one video to ``num_parts`` parts.

    Attributes:
        shape: the video shape ``(T, C, H, W)`` it partitions.
        num_parts: number of parts ``P``.
        index: ``long[T*C*H*W]`` part of each dimension (row-major over ``T, C, H, W``), or ``None``
            for the identity partition (every dimension its own part, ``P = T*C*H*W``).
        kind: ``"uniform"``, ``"random"`` or ``"pixel"``.
    """

    shape: tuple[int, int, int, int]
    num_parts: int
    index: Tensor | None
    kind: str

    @property
    def dim(self) -> int:
        """Number of input dimensions ``T*C*H*W``."""
        t, c, h, w = self.shape
        return t * c * h * w

    def expand(self, coefficients: Tensor) -> Tensor:
        """Per-dimension values ``[..., T*C*H*W]`` from per-part ``coefficients [..., num_parts]``.

        One gather for a whole population (``[P, num_parts] -> [P, D]``).
        """
        if coefficients.shape[-1] != self.num_parts:
            raise ValueError(
                f"coefficients must have {self.num_parts} entries on the last axis (one per part), "
                f"got shape {tuple(coefficients.shape)}"
            )
        if self.index is None:
            return coefficients
        return coefficients.index_select(-1, self.index.to(coefficients.device))

    def part_sizes(self) -> Tensor:
        """``long[num_parts]``: how many dimensions each part holds."""
        if self.index is None:
            return torch.ones(self.num_parts, dtype=torch.long)
        return torch.bincount(self.index, minlength=self.num_parts)

    def directions(self, tentative: Tensor) -> Tensor:
        """The zero-padded direction vectors ``d^(i)`` of Eq. 5 as a dense ``[num_parts, T*C*H*W]``.

        Only for inspection and tests of small partitions: attacks use :meth:`expand` instead.
        """
        flat = tentative.reshape(-1)
        if flat.numel() != self.dim:
            raise ValueError(
                f"tentative must have {self.dim} values (shape {self.shape}), got {flat.numel()}"
            )
        eye = torch.eye(self.num_parts, dtype=flat.dtype, device=flat.device)
        return self.expand(eye) * flat


def _check_shape(shape: tuple[int, ...] | torch.Size) -> tuple[int, int, int, int]:
    values = tuple(int(s) for s in shape)
    if len(values) == 5 and values[0] == 1:
        values = values[1:]
    if len(values) != 4 or any(s < 1 for s in values):
        raise ValueError(f"shape must be one video's (T, C, H, W) (or (1, T, C, H, W)), got {tuple(shape)}")
    return values  # type: ignore[return-value]


def partition_uniform(
    shape: tuple[int, ...] | torch.Size,
    patches: int | tuple[int, int] = 8,
    *,
    offset: tuple[int, int] = (0, 0),
    device: torch.device | str | None = None,
) -> Partition:
    """Each frame cut into a ``ph x pw`` grid of patches (all channels of a patch in one part).

    Args:
        shape: ``(T, C, H, W)``.
        patches: patches per side (``8``: the paper's ``8 x 8`` per frame, Sec. 4.1), or ``(ph, pw)``.
            Patch borders are ``floor(i * H / ph)``, so sizes differ by at most one pixel when ``H`` is
            not a multiple of ``ph``.
        offset: ``(dy, dx)`` pixels by which the grid is shifted down and right, each in
            ``[0, H // ph)`` and ``[0, W // pw)``. A shifted grid has one more row and column of
            (partial) patches along the borders, so up to ``T * (ph + 1) * (pw + 1)`` parts; every part
            is still a rectangle of adjacent pixels.

    Returns:
        A partition with ``T * ph * pw`` parts (unshifted), numbered frame-major then row-major.
    """
    t, c, h, w = _check_shape(shape)
    ph, pw = _grid_size(patches)
    if not (1 <= ph <= h and 1 <= pw <= w):
        raise ValueError(f"patches must be between 1 and the frame size {h}x{w}, got {ph}x{pw}")
    dy, dx = (int(o) for o in offset)
    if not (0 <= dy < max(1, h // ph) and 0 <= dx < max(1, w // pw)):
        raise ValueError(
            f"offset must lie in [0, {max(1, h // ph)}) x [0, {max(1, w // pw)}) for a {ph}x{pw} grid "
            f"on {h}x{w} frames, got {(dy, dx)}"
        )
    # A shift of (dy, dx) moves every border by that many pixels; the rows above the first border and
    # the columns left of it form the partial patches of an extra (0-th) row and column.
    row_ids = _grid_cells(h, ph, dy, device)
    col_ids = _grid_cells(w, pw, dx, device)
    rows_per_frame = int(row_ids.max()) + 1
    cols_per_frame = int(col_ids.max()) + 1
    cell = row_ids.reshape(h, 1) * cols_per_frame + col_ids.reshape(1, w)
    per_frame = rows_per_frame * cols_per_frame
    frames = torch.arange(t, device=device).reshape(t, 1, 1, 1) * per_frame
    index = (frames + cell.reshape(1, 1, h, w)).expand(t, c, h, w).reshape(-1).contiguous()
    return Partition((t, c, h, w), t * per_frame, index, "uniform")


def _grid_cells(size: int, parts: int, shift: int, device: torch.device | str | None) -> Tensor:
    """Cell number of each of ``size`` pixels for ``parts`` cells with borders moved by ``shift``.

    Unshifted, pixel ``i`` is in cell ``floor(i * parts / size)``. Shifted, the borders sit ``shift``
    pixels further on: pixel ``i`` is in cell ``floor((i - shift) * parts / size) + 1`` (pixels before
    the first border form cell 0), numbered without gaps.
    """
    positions = torch.arange(size, device=device)
    if shift == 0:
        return positions * parts // size
    cells = torch.div((positions - shift) * parts, size, rounding_mode="floor") + 1
    return cells - cells.min()


def _grid_size(patches: int | tuple[int, int]) -> tuple[int, int]:
    """``(ph, pw)`` from an int (square grid) or a pair."""
    return (patches, patches) if isinstance(patches, int) else (int(patches[0]), int(patches[1]))


def random_grid_offset(
    shape: tuple[int, ...] | torch.Size,
    patches: int | tuple[int, int],
    generator: torch.Generator | None = None,
) -> tuple[int, int]:
    """A uniformly random grid shift ``(dy, dx)`` for :func:`partition_uniform`, from ``generator``."""
    _, _, h, w = _check_shape(shape)
    ph, pw = _grid_size(patches)
    bounds = (max(1, h // max(1, ph)), max(1, w // max(1, pw)))
    dy, dx = (int(torch.randint(0, b, (1,), generator=generator)) for b in bounds)
    return dy, dx


def partition_random(
    shape: tuple[int, ...] | torch.Size,
    num_parts: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Partition:
    """The ``T*C*H*W`` dimensions assigned at random to ``num_parts`` parts of (almost) equal size.

    A random permutation of the dimensions is cut into ``num_parts`` consecutive runs, so part sizes
    differ by at most one. SR-BAD and Table 2's "Random" draw a fresh partition at every step.
    """
    t, c, h, w = _check_shape(shape)
    dim = t * c * h * w
    if not 1 <= num_parts <= dim:
        raise ValueError(f"num_parts must be between 1 and {dim}, got {num_parts}")
    permutation = torch.randperm(dim, generator=generator)
    index = torch.empty(dim, dtype=torch.long)
    index[permutation] = torch.arange(dim) * num_parts // dim
    return Partition((t, c, h, w), num_parts, index.to(device), "random")


def partition_pixel(shape: tuple[int, ...] | torch.Size) -> Partition:
    """Every input dimension its own part (P-BAD, Sec. 4.3): the identity, stored without an index."""
    t, c, h, w = _check_shape(shape)
    return Partition((t, c, h, w), t * c * h * w, None, "pixel")


def make_partition(
    kind: str,
    shape: tuple[int, ...] | torch.Size,
    *,
    patches: int | tuple[int, int] = 8,
    num_parts: int | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Partition:
    """Build a partition by name: ``"uniform"``, ``"random"`` or ``"pixel"``.

    ``"random"`` uses ``num_parts`` parts, by default as many as the uniform ``patches`` grid has
    (``T * patches^2``), which is how the paper compares the two (Sec. 4.2).
    """
    if kind == "uniform":
        return partition_uniform(shape, patches, device=device)
    if kind == "random":
        if num_parts is None:
            t = _check_shape(shape)[0]
            ph, pw = (patches, patches) if isinstance(patches, int) else patches
            num_parts = t * int(ph) * int(pw)
        return partition_random(shape, num_parts, generator=generator, device=device)
    if kind == "pixel":
        return partition_pixel(shape)
    raise ValueError(f"partition must be one of {PARTITIONS}, got {kind!r}")
