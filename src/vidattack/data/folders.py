"""UCF-101, HMDB-51 and Kinetics as torch Datasets over their official folder layouts and split files.

Each item is ``(video [T, 3, H, W] float32 in [0, 1], label int)``: the video file is decoded with
:func:`vidattack.io.read_video`, ``frames`` frames are picked (:mod:`vidattack.sampling`: spread
over the whole video, or a centred / random contiguous snippet as the papers' 16- and 32-frame clips)
and resized to ``size``.

Corrupt files. Real downloads contain a few videos FFmpeg cannot decode. They are never a crash:

* ``dataset[i]`` on a corrupt file warns (:class:`CorruptVideoWarning`, naming the file, once per
  file), remembers it in :attr:`VideoFolderDataset.corrupt` and returns the next decodable item
  (wrapping around), so a ``DataLoader`` keeps full batches while training;
* :meth:`VideoFolderDataset.iter_valid` yields only the decodable items, each once: use it to
  evaluate, where substituting a neighbour would count a video twice;
* ``on_error="raise"`` turns the substitution off and raises the decoding ``ValueError`` instead.

Videos listed in a split file but missing on disk (common for Kinetics, whose clips are fetched from
YouTube) are dropped when the dataset is built, with one warning that gives their count and the first
path; if none is found at all, that is a wrong root and raises ``FileNotFoundError``.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from torch import Tensor

from vidattack.io import VIDEO_EXTENSIONS, read_video
from vidattack.sampling import SAMPLING_MODES

__all__ = [
    "CorruptVideoWarning", "MissingVideoWarning", "VideoFolderDataset", "ClassFolders", "UCF101", "HMDB51",
    "Kinetics",
]  # fmt: skip


class CorruptVideoWarning(UserWarning):
    """A video file of a data set could not be decoded and was skipped."""


class MissingVideoWarning(UserWarning):
    """Videos listed in a split file are not on disk and were left out of the data set."""


class VideoFolderDataset(torch.utils.data.Dataset):
    """A list of ``(path, label)`` video samples, decoded on access.

    Args:
        samples: ``(path, label)`` pairs, labels indexing ``class_names``.
        class_names: the class names in label order.
        frames: frames per clip (T).
        size: ``(H, W)`` of the returned frames, or ``None`` for the native size (then a batch needs
            videos of equal size).
        sampling: ``"uniform"`` (T frames over the whole video), ``"centre"`` or ``"random"``
            (contiguous snippet of T frames with ``stride``).
        stride: temporal stride of snippets.
        transform: applied to each ``[T, C, H, W]`` video.
        on_error: ``"skip"`` (warn and substitute the next decodable item) or ``"raise"``.
        generator: randomness for ``sampling="random"`` (default: torch's global generator, which
            ``DataLoader`` seeds per worker).

    Attributes:
        samples: the ``(path, label)`` list.
        class_names: tuple of class names.
        corrupt: ``{path: reason}`` of files found undecodable so far.
    """

    def __init__(
        self,
        samples: Sequence[tuple[Path, int]],
        class_names: Sequence[str],
        *,
        frames: int = 16,
        size: tuple[int, int] | None = (112, 112),
        sampling: str = "uniform",
        stride: int = 1,
        transform: Callable[[Tensor], Tensor] | None = None,
        on_error: str = "skip",
        generator: torch.Generator | None = None,
    ) -> None:
        if sampling not in SAMPLING_MODES:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLING_MODES)}, got {sampling!r}")
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
            raise ValueError(f"frames must be a positive integer, got {frames!r}")
        if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        self.samples = [(Path(path), int(label)) for path, label in samples]
        self.class_names = tuple(class_names)
        self.frames, self.size, self.sampling, self.stride = frames, size, sampling, stride
        self.transform, self.on_error, self.generator = transform, on_error, generator
        self.corrupt: dict[Path, str] = {}

    @property
    def labels(self) -> list[int]:
        """The label of every sample, in order."""
        return [label for _, label in self.samples]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.samples)

    def _decode(self, index: int) -> Tensor:
        path = self.samples[index][0]
        return read_video(
            path,
            frames=self.frames,
            size=self.size,
            sampling=self.sampling,
            stride=self.stride,
            generator=self.generator,
        )

    def load(self, index: int) -> tuple[Tensor, int]:
        """Decode sample ``index`` with no skipping (raises ``ValueError`` on a corrupt file)."""
        video = self._decode(index)
        if self.transform is not None:
            video = self.transform(video)
        return video, self.samples[index][1]

    def _try_load(self, index: int) -> tuple[Tensor, int] | None:
        path, label = self.samples[index]
        if path in self.corrupt:
            return None
        try:
            video = self._decode(index)
        except (ValueError, FileNotFoundError) as error:
            # Only decoding failures are skipped; an error in the transform is the caller's bug.
            if self.on_error == "raise":
                raise
            self.corrupt[path] = str(error)
            warnings.warn(f"skipping unreadable video '{path}': {error}", CorruptVideoWarning, stacklevel=3)
            return None
        if self.transform is not None:
            video = self.transform(video)
        return video, label

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        n = len(self.samples)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a data set of {n} videos")
        index %= n
        for offset in range(n):
            item = self._try_load((index + offset) % n)
            if item is not None:
                return item
        raise RuntimeError(
            f"none of the {n} videos of this data set could be decoded (first: '{self.samples[0][0]}')"
        )

    def iter_valid(self) -> Iterator[tuple[Tensor, int]]:
        """Yield ``(video, label)`` for every decodable sample once, in order, warning about the rest."""
        for index in range(len(self.samples)):
            item = self._try_load(index)
            if item is not None:
                yield item

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({len(self)} videos, {self.num_classes} classes, frames={self.frames}, "
            f"size={self.size}, sampling={self.sampling!r})"
        )


# --------------------------------------------------------------------------------------------------
# Helpers shared by the layouts


def _check_root(root: str | os.PathLike) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data set root not found (or not a directory): '{root}'")
    return root


def _find_split_dir(root: Path, split_dir: str | os.PathLike | None, default_name: str) -> Path:
    if split_dir is not None:
        path = Path(split_dir)
        if not path.is_dir():
            raise FileNotFoundError(f"split directory not found: '{path}'")
        return path
    # The official archives ship the split files separately; look inside the root and beside it.
    candidates = [root / default_name, root.parent / default_name]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"split directory not found: tried {', '.join(repr(str(c)) for c in candidates)}; pass split_dir="
    )


def _check_fold(fold: int) -> int:
    if fold not in (1, 2, 3):
        raise ValueError(f"fold must be 1, 2 or 3, got {fold!r}")
    return fold


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: '{path}'")
    # The official lists use Windows line endings and sometimes trailing blanks.
    return [
        line.strip()
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
        if line.strip()
    ]


def _order_classes(found: Sequence[str], classes: Sequence[str] | None, source: Path) -> tuple[str, ...]:
    if classes is None:
        return tuple(found)
    classes = tuple(classes)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise ValueError(f"classes {unknown} listed in '{source}' are not in the given classes")
    return classes


def _drop_missing(samples: list[tuple[Path, int]], source: Path, root: Path) -> list[tuple[Path, int]]:
    present = [(path, label) for path, label in samples if path.is_file()]
    missing = len(samples) - len(present)
    if samples and not present:
        raise FileNotFoundError(
            f"none of the {len(samples)} videos listed in '{source}' exist under '{root}' "
            f"(first: '{samples[0][0]}'); is the root right?"
        )
    if missing:
        first = next(path for path, _ in samples if not path.is_file())
        warnings.warn(
            f"{missing} of {len(samples)} videos listed in '{source}' are missing under '{root}' and were "
            f"left out (first: '{first}')",
            MissingVideoWarning,
            stacklevel=3,
        )
    return present


def _dataset_kwargs(frames, size, sampling, stride, transform, on_error, generator) -> dict:
    return dict(
        frames=frames,
        size=size,
        sampling=sampling,
        stride=stride,
        transform=transform,
        on_error=on_error,
        generator=generator,
    )


# --------------------------------------------------------------------------------------------------
# Plain class folders


class ClassFolders(VideoFolderDataset):
    """Plain class folders: ``root/SPLIT/CLASS/VIDEO`` (when ``root/SPLIT`` exists) or ``root/CLASS/VIDEO``.

    Classes are the sub-folder names in sorted order; videos are the files with a video extension
    (:data:`vidattack.io.VIDEO_EXTENSIONS`), sorted by name.

    Args:
        root: the folder.
        split: the split sub-folder to read (``train``, ``val``, ``test``, ...); ``None``, or a split
            that has no sub-folder, reads ``root`` itself.
        frames, size, sampling, stride, transform, on_error, generator: see :class:`VideoFolderDataset`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | None = None,
        frames: int = 16,
        size: tuple[int, int] | None = (112, 112),
        *,
        sampling: str = "uniform",
        stride: int = 1,
        transform: Callable[[Tensor], Tensor] | None = None,
        on_error: str = "skip",
        generator: torch.Generator | None = None,
    ) -> None:
        base = _check_root(root)
        if split is not None and (base / split).is_dir():
            base = base / split
        names = sorted(entry.name for entry in base.iterdir() if entry.is_dir())
        if not names:
            raise FileNotFoundError(f"no class folders in '{base}' (expected {base}/CLASS/VIDEO files)")
        samples = [
            (path, label)
            for label, name in enumerate(names)
            for path in sorted((base / name).iterdir())
            if path.suffix.lower() in VIDEO_EXTENSIONS
        ]
        super().__init__(
            samples, names, **_dataset_kwargs(frames, size, sampling, stride, transform, on_error, generator)
        )


# --------------------------------------------------------------------------------------------------
# UCF-101


class UCF101(VideoFolderDataset):
    """UCF-101 (Soomro et al. 2012): ``root/Class/v_Class_gGG_cCC.avi`` with the official splits.

    Split files (from ``UCF101TrainTestSplits-RecognitionTask.zip``) in ``split_dir`` (default:
    ``root/ucfTrainTestlist`` or ``root/../ucfTrainTestlist``): ``classInd.txt`` ("1 ApplyEyeMakeup"
    lines), ``trainlist0F.txt`` ("Class/v_....avi LABEL", 1-based) and ``testlist0F.txt`` (paths only).

    Args:
        root: the folder holding the 101 class folders.
        split_dir: the folder holding the split files.
        fold: official split 1, 2 or 3.
        train: the training list (``True``) or the test list.
        frames, size: clip length and frame size.
        classes: class order to use for labels (default: ``classInd.txt`` order).
        sampling, stride, transform, on_error, generator: see :class:`VideoFolderDataset`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split_dir: str | os.PathLike | None = None,
        fold: int = 1,
        train: bool = False,
        frames: int = 16,
        size: tuple[int, int] | None = (112, 112),
        *,
        classes: Sequence[str] | None = None,
        sampling: str = "uniform",
        stride: int = 1,
        transform: Callable[[Tensor], Tensor] | None = None,
        on_error: str = "skip",
        generator: torch.Generator | None = None,
    ) -> None:
        root = _check_root(root)
        lists = _find_split_dir(root, split_dir, "ucfTrainTestlist")
        fold = _check_fold(fold)
        class_file = lists / "classInd.txt"
        index_names: list[str] = []
        for number, line in enumerate(_read_lines(class_file), start=1):
            parts = line.split()
            if len(parts) != 2 or not parts[0].isdigit():
                raise ValueError(
                    f"malformed line {number} in '{class_file}': {line!r} (expected 'INDEX ClassName')"
                )
            index_names.append(parts[1])
        names = _order_classes(index_names, classes, class_file)
        # Folder names and list entries differ in case in the official release (HandStandPushups).
        lookup = {name.lower(): i for i, name in enumerate(names)}

        list_file = lists / f"{'train' if train else 'test'}list0{fold}.txt"
        samples = []
        for number, line in enumerate(_read_lines(list_file), start=1):
            relative = line.split()[0]
            class_name = relative.replace("\\", "/").split("/")[0]
            if class_name.lower() not in lookup:
                raise ValueError(
                    f"line {number} of '{list_file}' names unknown class {class_name!r}: {line!r}"
                )
            samples.append((root / relative, lookup[class_name.lower()]))
        samples = _drop_missing(samples, list_file, root)
        super().__init__(
            samples, names, **_dataset_kwargs(frames, size, sampling, stride, transform, on_error, generator)
        )


# --------------------------------------------------------------------------------------------------
# HMDB-51


class HMDB51(VideoFolderDataset):
    """HMDB-51 (Kuehne et al. 2011): ``root/class/NAME.avi`` with the official 70/30 splits.

    Split files in ``split_dir`` (default: ``root/testTrainMulti_7030_splits`` or beside the root):
    ``<class>_test_split<fold>.txt`` with "NAME.avi ID" lines, ID 1 = training, 2 = testing,
    0 = unused.

    Args:
        root: the folder holding the 51 class folders.
        split_dir: the folder holding the split files.
        fold: official split 1, 2 or 3.
        train: the training videos (ID 1) or the test videos (ID 2).
        classes: class order to use for labels (default: sorted class names, as torchvision does).
        frames, size, sampling, stride, transform, on_error, generator: see :class:`VideoFolderDataset`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split_dir: str | os.PathLike | None = None,
        fold: int = 1,
        train: bool = False,
        frames: int = 16,
        size: tuple[int, int] | None = (112, 112),
        *,
        classes: Sequence[str] | None = None,
        sampling: str = "uniform",
        stride: int = 1,
        transform: Callable[[Tensor], Tensor] | None = None,
        on_error: str = "skip",
        generator: torch.Generator | None = None,
    ) -> None:
        root = _check_root(root)
        lists = _find_split_dir(root, split_dir, "testTrainMulti_7030_splits")
        fold = _check_fold(fold)
        suffix = f"_test_split{fold}.txt"
        split_files = sorted(p for p in lists.iterdir() if p.name.endswith(suffix))
        if not split_files:
            raise FileNotFoundError(f"no '*{suffix}' split files in '{lists}'")
        wanted = "1" if train else "2"
        entries: list[tuple[str, str]] = []
        for split_file in split_files:
            class_name = split_file.name[: -len(suffix)]
            for number, line in enumerate(_read_lines(split_file), start=1):
                parts = line.split()
                if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                    raise ValueError(
                        f"malformed line {number} in '{split_file}': {line!r} (expected 'NAME.avi 0|1|2')"
                    )
                if parts[1] == wanted:
                    entries.append((class_name, parts[0]))
        names = _order_classes(sorted(p.name[: -len(suffix)] for p in split_files), classes, lists)
        lookup = {name: i for i, name in enumerate(names)}
        samples = [(root / class_name / file_name, lookup[class_name]) for class_name, file_name in entries]
        samples = _drop_missing(samples, lists, root)
        super().__init__(
            samples, names, **_dataset_kwargs(frames, size, sampling, stride, transform, on_error, generator)
        )


# --------------------------------------------------------------------------------------------------
# Kinetics


class Kinetics(VideoFolderDataset):
    """Kinetics-400/600/700 (Kay et al. 2017) from an official annotation CSV and downloaded clips.

    The CSV has the columns ``label,youtube_id,time_start,time_end,split[,is_cc]``. Clips are found
    anywhere under ``root`` by file name, ``YOUTUBEID_SSSSSS_EEEEEE.<ext>`` (the ActivityNet
    downloader's naming, start and end in seconds padded to six digits) or just ``YOUTUBEID.<ext>``,
    so ``root/split/label/...``, ``root/label/...`` and flat folders all work.

    Args:
        root: folder holding the downloaded clips.
        csv: the annotation CSV (e.g. ``kinetics400/validate.csv``).
        split: keep the rows whose ``split`` column is this (``"train"``, ``"val"``/``"validate"``,
            ``"test"``); ``None`` keeps every row.
        classes: class order to use for labels (default: sorted labels of the whole CSV, so train and
            val CSVs of the same release agree).
        frames, size, sampling, stride, transform, on_error, generator: see :class:`VideoFolderDataset`.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        csv: str | os.PathLike,
        split: str | None = None,
        frames: int = 16,
        size: tuple[int, int] | None = (112, 112),
        *,
        classes: Sequence[str] | None = None,
        sampling: str = "uniform",
        stride: int = 1,
        transform: Callable[[Tensor], Tensor] | None = None,
        on_error: str = "skip",
        generator: torch.Generator | None = None,
    ) -> None:
        root = _check_root(root)
        csv_path = Path(csv)
        rows = _read_kinetics_csv(csv_path)
        aliases = {"validate": "val", "valid": "val", "validation": "val"}
        if split is not None:
            wanted = aliases.get(split, split)
            rows_in_split = [
                row for row in rows if aliases.get(row.get("split", ""), row.get("split", "")) == wanted
            ]
            if not rows_in_split:
                present = sorted({row.get("split", "") for row in rows})
                raise ValueError(f"no rows with split {split!r} in '{csv_path}' (splits present: {present})")
        else:
            rows_in_split = rows
        names = _order_classes(sorted({row["label"] for row in rows}), classes, csv_path)
        lookup = {name: i for i, name in enumerate(names)}

        found: dict[str, Path] = {}
        for directory, _, files in os.walk(root):
            for file_name in files:
                stem, extension = os.path.splitext(file_name)
                if extension.lower() in VIDEO_EXTENSIONS:
                    found.setdefault(stem, Path(directory) / file_name)
        samples = []
        for row in rows_in_split:
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except ValueError as error:
                raise ValueError(f"bad time_start/time_end in '{csv_path}': {row}") from error
            youtube_id = row["youtube_id"]
            stem = f"{youtube_id}_{start:06d}_{end:06d}"
            path = (
                found.get(stem)
                or found.get(youtube_id)
                or root / row.get("split", "") / row["label"] / f"{stem}.mp4"
            )
            samples.append((path, lookup[row["label"]]))
        samples = _drop_missing(samples, csv_path, root)
        super().__init__(
            samples, names, **_dataset_kwargs(frames, size, sampling, stride, transform, on_error, generator)
        )


def _read_kinetics_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"Kinetics annotation CSV not found: '{path}'")
    with path.open(newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        columns = set(reader.fieldnames or ())
        required = {"label", "youtube_id", "time_start", "time_end"}
        if not required <= columns:
            raise ValueError(
                f"'{path}' lacks the Kinetics columns {sorted(required - columns)} "
                f"(has {sorted(columns)}); test CSVs without labels cannot be evaluated"
            )
        return [row for row in reader if row.get("youtube_id")]
