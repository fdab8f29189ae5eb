"""Data: the synthetic motion test bed, real data-set layouts (UCF-101, HMDB-51, Kinetics) and clip
sampling. Everything yields videos in the vidattack layout (``[T, C, H, W]`` per item, float in [0, 1]).
"""

# Registers the scene test bed's look with the synthetic generator (SynthConfig(bed="scene")).
from vidattack.data import scene  # noqa: F401  (imports synthetic itself)
from vidattack.data.synthetic import (
    APPEARANCE_CLASSES,
    MOTION_CLASSES,
    SynthClips,
    SynthConfig,
    SyntheticVideoDataset,
    frame_shuffled,
    generate,
    layout_class_names,
    load_split,
    write_layout,
)

__all__ = [
    "APPEARANCE_CLASSES",
    "MOTION_CLASSES",
    "SynthClips",
    "SynthConfig",
    "SyntheticVideoDataset",
    "frame_shuffled",
    "generate",
    "layout_class_names",
    "load_split",
    "write_layout",
]
