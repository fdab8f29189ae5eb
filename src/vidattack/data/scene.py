"""The ``scene`` test bed: the motion test bed where appearance also predicts the action.

In UCF-101 the scene and the objects carry much of the class (a pool for ``Diving``, a horse for
``HorseRiding``), which is why image models pre-trained on single frames are useful priors for attacks
on video models (V-BAD). The motion test bed (:mod:`vidattack.data.synthetic`) removes that on purpose:
background and object are independent of the class. ``scene`` puts it back. Every clip keeps the motion,
trajectory, distractors and noise of the motion clip with the same ``(seed, split, index)``, but its
*look* is drawn from a class-specific distribution with overlapping support:

* a **style** (one of ten: background hue, texture grain, object colour) that is the class's own with
  probability :data:`P_OWN_STYLE`, the next class's with :data:`P_NEXT_STYLE` and uniformly random
  otherwise;
* an **object** (one of the 16 of :data:`~vidattack.data.synthetic.APPEARANCE_CLASSES`) that is the
  class's own with probability :data:`P_OWN_OBJECT` and uniformly random otherwise.

So a single frame predicts the class well but not perfectly (about 80% for a model that reads the
style and the object; see ``tests/test_scene.py``), while motion still tells every class apart.

Use it through the ordinary entry points with ``SynthConfig(bed="scene")`` (or :data:`SCENE`):
:func:`vidattack.data.synthetic.load_split`, ``generate``, ``SyntheticVideoDataset``; references
``scene:SPLIT:INDEX``; ``--data scene`` on the command line; ``bed = "scene"`` in a campaign's
``[data]`` table. Clip ``i`` is a pure function of ``(seed, split, i)`` as in the motion bed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from vidattack.data.synthetic import (
    _SPLIT_CODE,
    APPEARANCE_CLASSES,
    MOTION_CLASSES,
    SynthConfig,
    _hsv_to_rgb,
    generate,
    load_split,
    register_bed_look,
)

__all__ = [
    "SCENE",
    "CLASS_OBJECTS",
    "P_OWN_STYLE",
    "P_NEXT_STYLE",
    "P_OWN_OBJECT",
    "look",
    "restyle",
    "generate",
    "load_split",
]

#: The scene test bed's default configuration (sizes and seed as the motion bed).
SCENE = SynthConfig(bed="scene")

#: Each class's own object, as an index into APPEARANCE_CLASSES (digits 0-9 then six shapes). Mixed
#: digits and shapes, so that no single kind of object separates groups of classes.
CLASS_OBJECTS: tuple[int, ...] = (10, 3, 11, 7, 12, 0, 13, 5, 14, 15)

P_OWN_STYLE = 0.6  # the class's own style
P_NEXT_STYLE = 0.25  # the next class's style (overlap between neighbouring classes)
P_OWN_OBJECT = 0.6  # the class's own object; otherwise one of all 16 uniformly

# A separate random stream for the look, so the motion clip's draws (and so its motion) are unchanged.
_STREAM_SCENE = 3
_STYLE_CYCLES = ((0.6, 1.2), (1.6, 2.6))  # texture grain of even / odd styles, cycles per frame width


def _look_rng(config: SynthConfig, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, _SPLIT_CODE[split], _STREAM_SCENE, index])


def _draw_look(rng: np.random.Generator, label: int) -> tuple[int, int]:
    # The draws depend on the outcome (a random style is drawn only when needed); that is still a pure
    # function of the clip's own stream, which nothing else reads.
    u_style = rng.random()
    if u_style < P_OWN_STYLE:
        style = label
    elif u_style < P_OWN_STYLE + P_NEXT_STYLE:
        style = (label + 1) % len(MOTION_CLASSES)
    else:
        style = int(rng.integers(len(MOTION_CLASSES)))
    own_object = rng.random() < P_OWN_OBJECT
    any_object = int(rng.integers(len(APPEARANCE_CLASSES)))
    return style, CLASS_OBJECTS[label] if own_object else any_object


def look(config: SynthConfig, split: str, index: int, label: int) -> tuple[int, int]:
    """The hidden ``(style, object)`` of scene clip ``index`` of class ``label`` (for tests and analysis:
    how much of the class the look alone can tell)."""
    return _draw_look(_look_rng(config, split, index), int(label))


def restyle(clip: dict[str, Any], config: SynthConfig, split: str, index: int) -> dict[str, Any]:
    """Replace the look of one motion clip's parameters by a draw from its class's scene distribution.

    ``clip`` is what the motion bed drew for ``(config.seed, split, index)``; trajectories, distractors
    and noise are kept, the object, the background colours and grain and the object colours are
    redrawn from the clip's own random stream, so the result depends on ``(seed, split, index)`` only.
    """
    rng = _look_rng(config, split, index)
    label = int(clip["label"])
    style, obj = _draw_look(rng, label)
    dark = bool(rng.random() < 0.5)
    hue = style / len(MOTION_CLASSES) + rng.uniform(-0.03, 0.03)
    sats = rng.uniform(0.45, 0.85, size=2)
    low, high = (0.12, 0.5) if dark else (0.55, 0.92)
    values = (rng.uniform(low, low + 0.12), rng.uniform(high - 0.12, high))
    cycles = rng.uniform(*_STYLE_CYCLES[style % 2], size=len(clip["wave_phase"]))
    object_hue = (hue + 0.5 + rng.uniform(-0.06, 0.06)) % 1.0
    object_values = rng.uniform(0.85, 1.0, size=2) if dark else rng.uniform(0.2, 0.4, size=2)
    object_sats = rng.uniform(0.6, 1.0, size=2)

    out = dict(clip)
    out["appearance"] = obj
    out["bg_colours"] = np.stack([_hsv_to_rgb(hue % 1.0, sats[i], values[i]) for i in range(2)])
    # Keep each wave's direction, rescale its frequency to the style's grain.
    old = np.hypot(clip["wave_freq_x"], clip["wave_freq_y"])
    factor = math.pi * cycles / np.maximum(old, 1e-12)
    out["wave_freq_x"] = clip["wave_freq_x"] * factor
    out["wave_freq_y"] = clip["wave_freq_y"] * factor
    out["colour_a"] = _hsv_to_rgb(object_hue, object_sats[0], object_values[0])
    out["colour_b"] = _hsv_to_rgb((object_hue + 0.08) % 1.0, object_sats[1], object_values[1])
    return out


register_bed_look("scene", restyle)
