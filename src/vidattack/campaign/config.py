"""Campaign configuration: a TOML file read with :mod:`tomllib` into frozen dataclasses.

A campaign is models x attacks x videos. Example (``configs/pgd_demo.toml``)::

    name = "pgd-demo"
    seed = 0
    models = ["c3d-synth", "lrcn-synth"]     # zoo names or checkpoint paths (relative to this file)
    target = "untargeted"                    # "untargeted" | "random" | a class index
    eps = 0.05                               # global; an attack may override it
    budget = 10000                           # per-video query budget of black-box attacks

    [data]
    source = "synthetic"                     # or "folder" (root, layout: ucf101/hmdb51/kinetics/folders, split)
    split = "test"
    frames = 16                              # any SynthConfig field
    size = 32

    [selection]
    mode = "one-per-class"                   # "one-per-class" | "first-n" | "indices"
    limit = 10
    # indices = [0, 4, 9]                    # mode = "indices"

    [[attacks]]
    name = "pgd"                             # registry method
    label = "PGD-Linf"                       # how the report names it (unique)
    params = { steps = 20 }                  # the method's keyword parameters
    # eps, budget, target                    # per-attack overrides

Every problem raises :class:`ConfigError`, one line naming the file, the field and the problem.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vidattack.data.layouts import LAYOUTS, kinetics_csv
from vidattack.io import parse_toml
from vidattack.methods.spec import MAX_BUDGET
from vidattack.naming import digest

__all__ = [
    "ConfigError",
    "DataConfig",
    "SelectionConfig",
    "AttackConfig",
    "CampaignConfig",
    "load_config",
    "parse_config",
    "SELECTION_MODES",
    "FOLDER_LAYOUTS",
]

SELECTION_MODES = ("one-per-class", "first-n", "indices")
FOLDER_LAYOUTS = LAYOUTS  # ucf101, hmdb51, kinetics, folders (plain class folders ROOT/SPLIT/CLASS)
TARGET_MODES = ("untargeted", "random")
_SYNTH_FIELDS = ("frames", "size", "seed", "n_train", "n_val", "n_test", "clutter", "bed")


class ConfigError(ValueError):
    """A campaign configuration problem; the message is one line: ``FILE: FIELD: problem``."""

    def __init__(self, source: str, field_name: str, problem: str) -> None:
        self.source, self.field_name, self.problem = source, field_name, problem
        where = f"{source}: {field_name}" if field_name else source
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class DataConfig:
    """Where the videos come from.

    Attributes:
        source: ``"synthetic"`` (the test bed) or ``"folder"`` (a dataset root).
        split: ``train``/``val``/``test`` for the test bed; the layout's split name for folders.
        synth: :class:`vidattack.data.synthetic.SynthConfig` fields (synthetic source only; ``bed =
            "scene"`` selects the scene test bed).
        root: dataset root directory (folder source only), absolute.
        layout: ``ucf101``, ``hmdb51``, ``kinetics`` or ``folders`` (plain class folders ``ROOT/SPLIT/CLASS``;
            folder source only).
        folder: layout options of folder sources: ``fold`` (UCF-101/HMDB-51 official split 1-3),
            ``split_dir`` (where the split files are), ``csv`` (Kinetics annotation file; default
            ``root/annotations/SPLIT.csv``), ``frames`` and
            ``size`` (clip shape; default: the model's own).
        name: the data set's name in reports (default: ``synth-SPLIT`` or ``LAYOUT-SPLIT``).
    """

    source: str
    split: str
    synth: dict[str, Any] = field(default_factory=dict)
    root: str | None = None
    layout: str | None = None
    folder: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def identity(self) -> dict[str, Any]:
        """What fixes the videos (their pixels and labels): keys cached predictions and settings."""
        return {
            "source": self.source,
            "split": self.split,
            "synth": dict(sorted(self.synth.items())),
            "root": self.root,
            "layout": self.layout,
            "folder": dict(sorted(self.folder.items())),
        }


@dataclass(frozen=True)
class SelectionConfig:
    """Which videos of the split are attacked.

    Attributes:
        mode: ``one-per-class`` (one correctly classified video per class, drawn with the campaign seed,
            as V-BAD does), ``first-n`` (videos 0..limit-1) or ``indices`` (an explicit list).
        limit: at most this many videos (``None``: all classes / all listed indices; required for first-n).
        indices: the explicit list for ``mode = "indices"``.
    """

    mode: str = "one-per-class"
    limit: int | None = None
    indices: tuple[int, ...] = ()


@dataclass(frozen=True)
class AttackConfig:
    """One attack of the campaign.

    Attributes:
        method: the method name (:func:`vidattack.methods.names`).
        label: the name shown in reports; unique within the campaign (the same method may appear
            several times with different parameters, e.g. ablations).
        params: the method's keyword parameters.
        eps: perturbation bound (``None``: the method's default).
        budget: per-video query budget of black-box methods (``None``: unlimited).
        target: ``"untargeted"``, ``"random"`` or a class index.
    """

    method: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)
    eps: float | None = None
    budget: int | None = None
    target: str | int = "untargeted"

    def identity(self) -> dict[str, Any]:
        """Everything that changes what this attack computes (not its label)."""
        return {
            "method": self.method,
            "params": dict(sorted(self.params.items())),
            "eps": self.eps,
            "budget": self.budget,
            "target": self.target,
        }


@dataclass(frozen=True)
class CampaignConfig:
    """A parsed campaign.

    Attributes:
        name: the campaign's name (a database may hold several campaigns).
        seed: seeds selection, random targets and every item's attack (per item, see ``item_seed``).
        data, selection: see :class:`DataConfig`, :class:`SelectionConfig`.
        models: zoo names or checkpoint paths, as written in the file (the report's model names).
        model_paths: what :func:`vidattack.models.load` is given for each model (relative paths resolved
            against the config file's directory).
        attacks: the attacks, with global ``eps``/``budget``/``target`` already applied (the global
            ``eps`` is the bound of bounded methods; minimising methods have none).
        attacker_data: the attacker's own videos for methods that need them (start videos, initial
            directions, training clips): ``"synth"``, an ``.npz`` or a data-set folder (absolute);
            ``None``: the training split of the campaign's own data set.
        attacker_split: the split of ``attacker_data`` used (default ``train``).
        source: the file the config came from (for messages).
        text: the config's text (stored with results).
    """

    name: str
    seed: int
    data: DataConfig
    selection: SelectionConfig
    models: tuple[str, ...]
    model_paths: tuple[str, ...]
    attacks: tuple[AttackConfig, ...]
    attacker_data: str | None = None
    attacker_split: str = "train"
    source: str = "<string>"
    text: str = ""

    @property
    def config_hash(self) -> str:
        """A short hash of the parsed campaign (stable across formatting and comments)."""
        document = {
            "name": self.name,
            "seed": self.seed,
            "data": self.data.identity(),
            "selection": asdict(self.selection),
            "models": list(self.models),
            "attacks": [{"label": a.label, **a.identity()} for a in self.attacks],
        }
        if self.attacker_data is not None or self.attacker_split != "train":
            document["attacker_data"] = [self.attacker_data, self.attacker_split]
        return _digest(document)

    def attack(self, label: str) -> AttackConfig:
        """The attack whose report label is ``label``."""
        for entry in self.attacks:
            if entry.label == label:
                return entry
        raise KeyError(label)


def _digest(document: Any) -> str:
    return digest(document)[:16]


def load_config(path: str | Path) -> CampaignConfig:
    """Read and validate a campaign TOML file.

    Raises:
        ConfigError: unreadable file, TOML syntax, a missing or wrong field, an unknown attack method or
            parameter, an unknown model, or a missing dataset root (one line, naming file and field).
    """
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, "", "config file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(source, "", "not a UTF-8 text file (a TOML file was expected)") from None
    except OSError as error:
        raise ConfigError(source, "", f"cannot read: {error.strerror or error}") from None
    return parse_config(text, source=source, base_dir=path.resolve().parent)


def parse_config(
    text: str, *, source: str = "<string>", base_dir: str | Path | None = None
) -> CampaignConfig:
    """Parse campaign TOML ``text`` (``base_dir`` resolves relative model paths and dataset roots).

    Raises:
        ConfigError: see :func:`load_config`.
    """
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    try:
        document = parse_toml(text, source)
    except ValueError as error:
        raise ConfigError(source, "", str(error)) from None
    reader = _Reader(source)
    reader.unknown_keys(
        document, "",
        ("name", "seed", "data", "selection", "models", "attacks", "target", "eps", "budget", "attacker_data",
         "attacker_split"),
    )  # fmt: skip
    name = reader.string(document, "name", required=True)
    seed = reader.integer(document, "seed", default=0, minimum=0)
    data = _parse_data(reader, document.get("data"), base)
    selection = _parse_selection(reader, document.get("selection", {}))
    models, model_paths = _parse_models(reader, document.get("models"), base)
    eps = reader.number(document, "eps", default=None)
    budget = reader.integer(document, "budget", default=None, minimum=1)
    if budget is not None and budget > MAX_BUDGET:
        raise reader.fail("budget", f"must be at most 2^63 - 1 (the store's integers), got {budget}")
    target = _parse_target(reader, document, "target", "untargeted")
    attacks = _parse_attacks(reader, document.get("attacks"), eps, budget, target)
    attacker_data = reader.string(document, "attacker_data", default=None)
    from vidattack.data.synthetic import DATA_NAMES  # the test beds by name need no path

    if attacker_data is not None and attacker_data.split(":", 1)[0] not in DATA_NAMES:
        resolved = (base / attacker_data).resolve()
        if not resolved.exists():
            raise reader.fail("attacker_data", f"no such file or folder: '{resolved}'")
        attacker_data = str(resolved)
    attacker_split = reader.string(document, "attacker_split", default="train")
    return CampaignConfig(
        name=name,
        seed=seed,
        data=data,
        selection=selection,
        models=models,
        model_paths=model_paths,
        attacks=attacks,
        attacker_data=attacker_data,
        attacker_split=attacker_split,
        source=source,
        text=text,
    )


class _Reader:
    """Typed field access that turns every problem into a one-line :class:`ConfigError`."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field_name: str, problem: str) -> ConfigError:
        return ConfigError(self.source, field_name, problem)

    @staticmethod
    def _name(prefix: str, key: str) -> str:
        return f"{prefix}.{key}" if prefix else key

    def unknown_keys(self, table: dict[str, Any], prefix: str, known: tuple[str, ...]) -> None:
        for key in table:
            if key not in known:
                raise self.fail(self._name(prefix, key), f"unknown field; expected one of {', '.join(known)}")

    def table(self, value: Any, field_name: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field_name, f"must be a table, got {type(value).__name__}")
        return value

    def string(
        self,
        table: dict[str, Any],
        key: str,
        *,
        prefix: str = "",
        required: bool = False,
        default: str | None = None,
        choices: tuple[str, ...] | None = None,
    ) -> Any:
        name = self._name(prefix, key)
        if key not in table:
            if required:
                raise self.fail(name, "missing (required)")
            return default
        value = table[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, f"must be a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def integer(
        self,
        table: dict[str, Any],
        key: str,
        *,
        prefix: str = "",
        default: int | None = None,
        minimum: int | None = None,
    ) -> Any:
        name = self._name(prefix, key)
        if key not in table:
            return default
        value = table[key]
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.fail(name, f"must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(name, f"must be >= {minimum}, got {value}")
        return value

    def number(
        self, table: dict[str, Any], key: str, *, prefix: str = "", default: float | None = None
    ) -> Any:
        name = self._name(prefix, key)
        if key not in table:
            return default
        value = table[key]
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not math.isfinite(value)
            or value <= 0
        ):
            raise self.fail(name, f"must be a positive number, got {value!r}")
        return float(value)


def _parse_data(reader: _Reader, value: Any, base: Path) -> DataConfig:
    if value is None:
        raise reader.fail("data", 'missing (required): a [data] table with source = "synthetic" or "folder"')
    table = reader.table(value, "data")
    kind = reader.string(table, "source", prefix="data", required=True, choices=("synthetic", "folder"))
    name = reader.string(table, "name", prefix="data", default=None)
    if kind == "synthetic":
        reader.unknown_keys(table, "data", ("source", "split", "name", *_SYNTH_FIELDS))
        split = reader.string(table, "split", prefix="data", default="test", choices=("train", "val", "test"))
        synth: dict[str, Any] = {}
        for key in _SYNTH_FIELDS:
            if key not in table:
                continue
            if key == "clutter":
                if not isinstance(table[key], bool):
                    raise reader.fail("data.clutter", f"must be true or false, got {table[key]!r}")
                synth[key] = table[key]
            elif key == "bed":
                from vidattack.data.synthetic import BEDS

                synth[key] = reader.string(table, key, prefix="data", choices=BEDS)
            else:
                synth[key] = reader.integer(table, key, prefix="data", minimum=0)
                _check_clip_limit(reader, key, synth[key])
        from vidattack.data.synthetic import SynthConfig, data_name

        try:
            config = SynthConfig(**synth)
        except ValueError as error:
            raise reader.fail("data", str(error)) from None
        return DataConfig(source=kind, split=split, synth=synth, name=name or f"{data_name(config)}-{split}")
    reader.unknown_keys(
        table,
        "data",
        ("source", "split", "name", "root", "layout", "fold", "split_dir", "csv", "frames", "size"),
    )
    layout = reader.string(table, "layout", prefix="data", required=True, choices=FOLDER_LAYOUTS)
    root = _existing(reader, table, "root", base, directory=True, required=True)
    if layout == "kinetics":
        split = reader.string(table, "split", prefix="data", default="val")
    elif layout == "folders":
        split = reader.string(table, "split", prefix="data", default="test")
    else:
        split = reader.string(table, "split", prefix="data", default="test", choices=("train", "test"))
    folder: dict[str, Any] = {}
    options = {"ucf101": ("fold", "split_dir"), "hmdb51": ("fold", "split_dir"), "kinetics": ("csv",)}
    for key in ("fold", "split_dir", "csv"):  # each layout's own options only
        if key in table and key not in options.get(layout, ()):
            raise reader.fail(f"data.{key}", f"is not an option of layout {layout!r}")
    if layout in ("ucf101", "hmdb51"):
        folder["fold"] = reader.integer(table, "fold", prefix="data", default=1, minimum=1)
        if folder["fold"] > 3:
            raise reader.fail("data.fold", f"official splits are 1, 2 and 3, got {folder['fold']}")
        if "split_dir" in table:
            folder["split_dir"] = _existing(reader, table, "split_dir", base, directory=True)
    elif layout == "kinetics" and "csv" in table:
        folder["csv"] = _existing(reader, table, "csv", base, directory=False, required=True)
    elif layout == "kinetics":  # the split's CSV under root/annotations
        try:
            kinetics_csv(root, split)
        except ValueError as error:
            raise reader.fail("data.csv", f"not given, and {error}") from None
    for key in ("frames", "size"):
        if key in table:
            folder[key] = reader.integer(table, key, prefix="data", minimum=1)
            _check_clip_limit(reader, key, folder[key])
    return DataConfig(
        source=kind, split=split, root=root, layout=layout, folder=folder, name=name or f"{layout}-{split}"
    )


#: Largest clip a campaign may ask for: the decoders' defaults (vidattack.io's max_frames and max_pixels).
_CLIP_LIMITS = {"frames": 10_000, "size": 4096}


def _check_clip_limit(reader: _Reader, key: str, value: int) -> None:
    limit = _CLIP_LIMITS.get(key)
    if limit is not None and value > limit:
        raise reader.fail(f"data.{key}", f"must be at most {limit}, got {value}")


def _existing(
    reader: _Reader, table: dict[str, Any], key: str, base: Path, *, directory: bool, required: bool = False
) -> str:
    """An existing directory or file named by ``data.KEY``, resolved against the config's directory."""
    text = reader.string(table, key, prefix="data", required=required)
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = base / path
    kind = "directory" if directory else "file"
    if not (path.is_dir() if directory else path.is_file()):
        what = "dataset root" if key == "root" else kind
        raise reader.fail(f"data.{key}", f"{what} {path} does not exist or is not a {kind}")
    return str(path.resolve())


def _parse_selection(reader: _Reader, value: Any) -> SelectionConfig:
    table = reader.table(value, "selection")
    reader.unknown_keys(table, "selection", ("mode", "limit", "indices"))
    mode = reader.string(table, "mode", prefix="selection", default="one-per-class", choices=SELECTION_MODES)
    limit = reader.integer(table, "limit", prefix="selection", default=None, minimum=1)
    indices: tuple[int, ...] = ()
    if mode == "indices":
        raw = table.get("indices")
        if not isinstance(raw, list) or not raw:
            raise reader.fail(
                "selection.indices", 'must be a non-empty list of video indices for mode = "indices"'
            )
        for item in raw:
            if not isinstance(item, int) or isinstance(item, bool) or item < 0:
                raise reader.fail("selection.indices", f"must hold non-negative integers, got {item!r}")
        if len(set(raw)) != len(raw):
            raise reader.fail("selection.indices", "lists a video twice")
        indices = tuple(raw)
    elif "indices" in table:
        raise reader.fail("selection.indices", f'only applies to mode = "indices", not {mode!r}')
    if mode == "first-n" and limit is None:
        raise reader.fail("selection.limit", 'required for mode = "first-n"')
    return SelectionConfig(mode=mode, limit=limit, indices=indices)


def _parse_models(reader: _Reader, value: Any, base: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if value is None:
        raise reader.fail("models", "missing (required): a list of zoo names or checkpoint paths")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise reader.fail("models", f"must be a non-empty list of strings, got {value!r}")
    names: list[str] = []
    paths: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise reader.fail(f"models[{index}]", f"must be a zoo name or checkpoint path, got {item!r}")
        if item in names:
            raise reader.fail(f"models[{index}]", f"model {item!r} is listed twice")
        paths.append(_resolve_model(reader, f"models[{index}]", item, base))
        names.append(item)
    return tuple(names), tuple(paths)


def _resolve_model(reader: _Reader, field_name: str, item: str, base: Path) -> str:
    """A zoo name or a model service URL stays as given; a checkpoint path is resolved against the config's directory."""
    from vidattack.models import checkpoint, zoo
    from vidattack.remote import is_remote

    if is_remote(item):
        return item
    candidate = Path(item).expanduser()
    if not candidate.is_absolute():
        candidate = base / candidate
    if checkpoint.exists(candidate):
        return str(candidate)
    if checkpoint.exists(item):
        return str(Path(item).resolve())
    names = zoo.model_names()
    if item in names:
        return item
    known = ", ".join(names) if names else "(none shipped yet)"
    raise reader.fail(
        field_name, f"unknown model {item!r}: not a checkpoint file and not a zoo name; zoo: {known}"
    )


def _parse_target(
    reader: _Reader, table: dict[str, Any], key: str, default: str | int, prefix: str = ""
) -> str | int:
    if key not in table:
        return default
    value = table[key]
    name = reader._name(prefix, key)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise reader.fail(name, f'must be "untargeted", "random" or a class index, got {value!r}')
    if isinstance(value, int):
        if value < 0:
            raise reader.fail(name, f"class index must be >= 0, got {value}")
        return value
    if value not in TARGET_MODES:
        raise reader.fail(name, f'must be "untargeted", "random" or a class index, got {value!r}')
    return value


def _parse_attacks(
    reader: _Reader, value: Any, eps: float | None, budget: int | None, target: str | int
) -> tuple[AttackConfig, ...]:
    from vidattack import methods
    from vidattack.methods.params import check_value
    from vidattack.methods.spec import check_eps

    if value is None:
        raise reader.fail("attacks", "missing (required): one or more [[attacks]] tables")
    if not isinstance(value, list) or not value:
        raise reader.fail("attacks", "must be one or more [[attacks]] tables")
    attacks: list[AttackConfig] = []
    labels: set[str] = set()
    for index, raw in enumerate(value):
        prefix = f"attacks[{index}]"
        table = reader.table(raw, prefix)
        reader.unknown_keys(table, prefix, ("name", "label", "params", "eps", "budget", "target"))
        method = reader.string(table, "name", prefix=prefix, required=True)
        try:
            methods.get(method)
        except ValueError as error:
            raise reader.fail(f"{prefix}.name", str(error)) from None
        label = reader.string(table, "label", prefix=prefix, default=method)
        if label in labels:
            raise reader.fail(
                f"{prefix}.label", f"label {label!r} is used twice; give each attack its own label"
            )
        labels.add(label)
        params = reader.table(table.get("params", {}), f"{prefix}.params")
        known = methods.parameters(method)
        for key in params:
            if key not in known:
                raise reader.fail(
                    f"{prefix}.params.{key}",
                    f"attack {method!r} has no parameter {key!r}; parameters: "
                    f"{', '.join(sorted(known)) or 'none'}",
                )
            try:
                check_value(known[key], params[key])
            except ValueError as error:
                raise reader.fail(f"{prefix}.params.{key}", str(error)) from None
        minimising = methods.get(method).kind == "minimising"
        if minimising and "eps" in table:
            raise reader.fail(
                f"{prefix}.eps",
                f"{method} is a minimising method (it has no eps bound); set its stopping target in params "
                "instead (e.g. map_target, 0-255 scale)",
            )
        attack_eps = None if minimising else reader.number(table, "eps", prefix=prefix, default=eps)
        try:
            check_eps(attack_eps, str(params.get("norm", "linf")))
        except ValueError as error:
            raise reader.fail(f"{prefix}.eps" if "eps" in table else "eps", str(error)) from None
        white_box = methods.get(method).threat == "white-box"
        if white_box and "budget" in table:
            raise reader.fail(f"{prefix}.budget", f"{method} is a white-box method and makes no queries: drop budget")
        # the global budget is the query budget of the black-box attacks of the grid
        attack_budget = None if white_box else reader.integer(table, "budget", prefix=prefix, default=budget, minimum=1)
        if attack_budget is not None and attack_budget > MAX_BUDGET:
            raise reader.fail(f"{prefix}.budget" if "budget" in table else "budget",
                              f"must be at most 2^63 - 1 (the store's integers), got {attack_budget}")  # fmt: skip
        attacks.append(
            AttackConfig(
                method=method,
                label=label,
                params=dict(params),
                eps=attack_eps,
                budget=attack_budget,
                target=_parse_target(reader, table, "target", target, prefix),
            )
        )
    return tuple(attacks)
