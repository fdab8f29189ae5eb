"""Write an attack's outputs into the directory the user gave, and nowhere else."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch import Tensor

from vidattack import io, viz
from vidattack.result import AttackResult

__all__ = ["write_attack_outputs", "safe_child", "prepare_output_dir"]


def safe_child(directory: Path, name: str) -> Path:
    """``directory / name``, refusing names that would escape ``directory`` (``..``, absolute paths)."""
    path = (directory / name).resolve()
    if directory.resolve() not in path.parents:
        raise ValueError(f"refusing to write {name!r} outside the output directory {directory}")
    return path


def prepare_output_dir(out: str | Path, what: str = "out") -> Path:
    """Create the output directory ``out`` (or accept an existing one) and check it is writable.

    Called before any work, so that a bad ``--out`` fails in a second instead of after the attack.

    Args:
        what: the argument's name for messages (the CLI passes ``"--out"``).

    Raises:
        ValueError: ``out`` is an existing file (or other non-directory), cannot be created, or is not
            writable; the message names ``what`` and the path.
    """
    directory = Path(out)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{what} '{directory}' exists and is not a directory (it must be a directory to write into)")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"{what} '{directory}' cannot be created: {error.strerror or error}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"{what} '{directory}' is not writable")
    return directory


def write_attack_outputs(out: str | Path, clean: Tensor, result: AttackResult | None, record: dict[str, Any]) -> dict[str, str]:
    """Write ``result.json`` and, when the attack ran, the adversarial video and plots.

    Files: ``adversarial.mkv`` (lossless FFV1, bit-exact 8-bit frames), ``adversarial.npz`` (exact float
    tensors: clean, adversarial), ``preview.mp4`` (lossy H.264 for viewing), ``grid.png`` (clean /
    adversarial / amplified perturbation), ``trace.png`` (the attack's loss or top-1 probability
    against queries or iterations, the same data as the campaign report's curves) and, for flicker
    attacks, ``flicker.png``.

    Args:
        clean: ``[1,T,C,H,W]`` clean video.

    Returns:
        ``{kind: path}`` of the files written.
    """
    directory = prepare_output_dir(out)
    written: dict[str, str] = {}
    if result is not None:
        adversarial = result.adversarial[0]
        io.write_lossless(safe_child(directory, "adversarial.mkv"), adversarial)
        io.save_npz(safe_child(directory, "adversarial.npz"), clean=clean[0], adversarial=adversarial)
        io.write_preview(safe_child(directory, "preview.mp4"), adversarial)
        title = f"{record.get('method')}: label {record.get('label')} -> {record.get('adv_label')}"
        viz.frame_grid(clean[0], adversarial, safe_child(directory, "grid.png"), title=title)
        written.update(lossless="adversarial.mkv", tensors="adversarial.npz", preview="preview.mp4", grid="grid.png")
        if result.trace and len(result.trace[0]) > 1:
            xlabel = "iterations" if int(result.queries[0]) == 0 else "queries"
            viz.trace_curve(result.trace[0], safe_child(directory, "trace.png"), xlabel=xlabel, title=title)
            written["trace"] = "trace.png"
        offsets = result.extras[0].get("offsets")
        if isinstance(offsets, Tensor) and offsets.dim() == 2:
            viz.flicker_curves(offsets, safe_child(directory, "flicker.png"))
            written["flicker"] = "flicker.png"
    record = {**record, "files": dict(written)}
    safe_child(directory, "result.json").write_text(io.json_text(record, indent=2))
    written["record"] = "result.json"
    return {kind: str(directory / name) for kind, name in written.items()}
