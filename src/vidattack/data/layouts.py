"""Open a user's data-set folder in whichever layout it has, with labels in the model's class order.

``vidattack evaluate --data``, ``--attacker-data``, ``vidattack eval --data`` and campaigns all open
folders of real videos; they share this one rule, so that label ``k`` means the model's class ``k``
everywhere. Without it a folder's labels follow the data set's own order (UCF-101's ``classInd.txt``,
sorted names for HMDB-51, Kinetics and plain class folders), and a model trained with another order
is scored, and attacked, against the wrong classes without any error.

Layouts (:func:`detect_layout`): UCF-101 (a ``ucfTrainTestlist`` folder in or beside the root),
HMDB-51 (``testTrainMulti_7030_splits``), Kinetics (``annotations/{train,validate,test}.csv``, clips
anywhere under the root: ``SPLIT/LABEL/ID_START_END.mp4`` or flat) and plain class folders
(``ROOT/SPLIT/CLASS/*.mp4``).

Class names are matched up to case, ``_``, ``-`` and spaces (``ApplyEyeMakeup``, ``apply_eye_makeup``
and ``apply eye makeup`` agree): when every class of the folder is one of the model's
(``model.class_names``, kept in vidattack checkpoints), each label becomes the model's index of that
class; a folder may hold a subset of the model's classes (a few Kinetics classes for a Kinetics-400
model).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from vidattack.data import folders

__all__ = [
    "LAYOUTS", "detect_layout", "kinetics_csv", "model_class_order", "open_folder", "label_order", "class_of_path",
]  # fmt: skip

#: The layouts :func:`open_folder` reads (``"folders"``: plain class folders).
LAYOUTS: tuple[str, ...] = ("ucf101", "hmdb51", "kinetics", "folders")

# Kinetics releases name the validation CSV "validate.csv"; other downloads "val.csv".
_KINETICS_CSV_NAMES = {"train": ("train",), "val": ("validate", "val", "valid", "validation"), "test": ("test",)}


def detect_layout(root: str | os.PathLike) -> str:
    """The layout of the data-set folder ``root``: ``"ucf101"``, ``"hmdb51"``, ``"kinetics"`` or
    ``"folders"`` (anything else is read as plain class folders).

    Raises:
        FileNotFoundError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: '{root}'")
    # the official UCF-101 / HMDB-51 archives ship their split files beside the videos' folder
    for layout, split_dir in (("ucf101", "ucfTrainTestlist"), ("hmdb51", "testTrainMulti_7030_splits")):
        if (root / split_dir).is_dir() or (root.parent / split_dir).is_dir():
            return layout
    if any((root / "annotations").glob("*.csv")):
        return "kinetics"
    return "folders"


def kinetics_csv(root: str | os.PathLike, split: str) -> Path:
    """The annotation CSV of ``split`` (``train``, ``val``/``validate`` or ``test``) of a Kinetics folder:
    ``root/annotations/train.csv``, ``validate.csv`` (or ``val.csv``) or ``test.csv``.

    Raises:
        ValueError: an unknown split, or no CSV for it (the message lists the CSVs there are).
    """
    split = "val" if split in _KINETICS_CSV_NAMES["val"] else split  # "validate", as the CSV's split column says
    if split not in _KINETICS_CSV_NAMES:
        raise ValueError(f"split must be one of {', '.join(_KINETICS_CSV_NAMES)} for Kinetics, got {split!r}")
    annotations = Path(root) / "annotations"
    for name in _KINETICS_CSV_NAMES[split]:
        if (annotations / f"{name}.csv").is_file():
            return annotations / f"{name}.csv"
    present = sorted(path.name for path in annotations.glob("*.csv"))
    raise ValueError(f"no annotation CSV for the {split} split in '{annotations}' (found: {present or 'none'})")


def _name_key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


def model_class_order(data_classes: Sequence[str], model_classes: Sequence[str] | None) -> tuple[str, ...] | None:
    """The data set's classes in the model's order, or ``None`` when the names do not allow it.

    Args:
        data_classes: the folder's class names.
        model_classes: the model's class names, in the order of its outputs (``None``: unknown).

    Returns:
        One name per model class, in the model's order, spelled as in the folder where the folder has
        that class (so the folder readers recognise it), or ``None`` if ``model_classes`` is ``None``,
        a folder class is not among them, or two names of either side agree up to case, ``_``, ``-``
        and spaces.
    """
    if model_classes is None:
        return None
    data_keys = {_name_key(name): name for name in data_classes}
    model_keys = [_name_key(str(name)) for name in model_classes]
    if len(data_keys) != len(data_classes) or len(set(model_keys)) != len(model_keys):
        return None
    if not set(data_keys) <= set(model_keys):
        return None
    return tuple(data_keys.get(key, str(name)) for key, name in zip(model_keys, model_classes, strict=True))


def class_of_path(path: str | os.PathLike, model_classes: Sequence[str] | None) -> int | None:
    """The model's index of the class that names the folder holding the video file ``path``
    (``.../ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi``: every layout keeps a class's videos in a folder
    of its name), matched up to case, ``_``, ``-`` and spaces; ``None`` when no class matches."""
    if model_classes is None or _placeholders(model_classes):
        return None
    keys = [_name_key(str(name)) for name in model_classes]
    folder = _name_key(Path(path).parent.name)
    return keys.index(folder) if folder and keys.count(folder) == 1 else None


def _placeholders(model_classes: Sequence[str]) -> bool:
    # a remote model that declares no names is given 0, 1, ..., K-1
    return all(str(name) == str(i) for i, name in enumerate(model_classes))


def label_order(dataset: folders.VideoFolderDataset, model_classes: Sequence[str] | None) -> str:
    """How :func:`open_folder` labelled ``dataset`` for a model with ``model_classes``, in words (for reports)."""
    if model_class_order(dataset.class_names, model_classes) is not None:
        return "the model's classes, matched by name"
    if model_classes is None or _placeholders(model_classes):
        return "the data set's own class order (the model names no classes)"
    return "the data set's own class order (its class names are not the model's)"


def _relabel(dataset: folders.VideoFolderDataset, classes: tuple[str, ...]) -> None:
    index = {name: i for i, name in enumerate(classes)}
    dataset.samples = [(path, index[dataset.class_names[label]]) for path, label in dataset.samples]
    dataset.class_names = classes


def open_folder(
    root: str | os.PathLike,
    split: str,
    *,
    frames: int,
    size: tuple[int, int] | None,
    layout: str | None = None,
    model_classes: Sequence[str] | None = None,
    on_error: str = "raise",
    fold: int = 1,
    split_dir: str | os.PathLike | None = None,
    csv: str | os.PathLike | None = None,
) -> folders.VideoFolderDataset:
    """The ``split`` of the data-set folder ``root`` as a :class:`~vidattack.data.folders.VideoFolderDataset`.

    Args:
        root: the folder.
        split: ``train``, ``val`` or ``test`` (UCF-101 and HMDB-51 have train and test only; plain class
            folders read ``root/SPLIT`` when it exists, else ``root`` itself if it has no split folders).
        frames, size: clip length and ``(H, W)`` of the decoded clips.
        layout: one of :data:`LAYOUTS`, or ``None`` to recognise it (:func:`detect_layout`).
        model_classes: the model's class names; labels follow them when the names match (module docs;
            ``0, 1, ...``, a remote model's placeholders, match folders named by class index).
        on_error: ``"raise"`` (a corrupt video raises when loaded) or ``"skip"``.
        fold: the official split of UCF-101 / HMDB-51 (1-3).
        split_dir: where UCF-101's / HMDB-51's split files are (default: in or beside ``root``).
        csv: Kinetics' annotation CSV (default: :func:`kinetics_csv`).

    Raises:
        FileNotFoundError: no such folder, or missing split files.
        ValueError: an unknown layout or split, no videos in the split, or more classes than the model has.
    """
    layout = detect_layout(root) if layout is None else layout
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    common = {"frames": frames, "size": size, "on_error": on_error}
    dataset: folders.VideoFolderDataset
    if layout in ("ucf101", "hmdb51"):
        if split not in ("train", "test"):
            raise ValueError(f"{layout} has train and test splits only, not {split!r}")
        reader = folders.UCF101 if layout == "ucf101" else folders.HMDB51
        dataset = reader(root, split_dir, fold=fold, train=split == "train", **common)
    elif layout == "kinetics":
        # a CSV of one split needs no filtering by its split column (some releases have none)
        chosen = kinetics_csv(root, split) if csv is None else csv
        dataset = folders.Kinetics(root, chosen, split=None if csv is None else split, **common)
    else:
        dataset = _class_folders(Path(root), split, common)
    if len(dataset) == 0:
        raise ValueError(f"no videos in the {split} split of '{root}'")
    ordered = model_class_order(dataset.class_names, model_classes)
    if ordered is not None:
        _relabel(dataset, ordered)
    elif model_classes is not None:
        if len(dataset.class_names) > len(model_classes):
            raise ValueError(
                f"'{root}' has {len(dataset.class_names)} classes, the model {len(model_classes)}, and their "
                f"names do not match: labels would not be the model's"
            )
        if _placeholders(model_classes):
            return dataset  # nothing to compare the folder's names with
        warnings.warn(
            f"the class names of '{root}' ({', '.join(dataset.class_names[:3])}, ...) are not the model's "
            f"({', '.join(map(str, model_classes[:3]))}, ...): labels follow the data set's own order",
            UserWarning,
            stacklevel=2,
        )
    return dataset


def _class_folders(root: Path, split: str, common: dict) -> folders.ClassFolders:
    # a folder with split folders but not this one would otherwise be read as classes named "train", ...
    splits = [name for name in ("train", "val", "test") if (root / name).is_dir()]
    if splits and not (root / split).is_dir():
        raise ValueError(f"'{root}' has no {split} split (it has: {', '.join(splits)})")
    return folders.ClassFolders(root, split=split, **common)
