"""Campaign configs, selection, targets, seeds, the store and report tables (fast unit tests)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from vidattack.campaign import (
    ConfigError,
    Store,
    item_seed,
    load_config,
    markdown_table,
    parse_config,
    resolve_target,
)
from vidattack.campaign.execution import select_one_per_class
from vidattack.campaign.report import summarize


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with one tiny random C3D checkpoint ``tiny`` (configs need a model that exists)."""
    from vidattack import models

    directory = tmp_path_factory.mktemp("models")
    net = models.build(
        "c3d",
        num_classes=10,
        width=1 / 16,
        fc_dim=16,
        fc_pool=(1, 2, 2),
        dropout=0.0,
        num_frames=4,
        input_size=(16, 16),
        seed=0,
    )
    models.save(net, directory / "tiny")
    return directory


GOOD = """
name = "unit"
seed = 7
models = ["tiny"]
eps = 0.03
budget = 500
target = "random"

[data]
source = "synthetic"
split = "test"
frames = 4
size = 16
n_test = 30

[selection]
mode = "one-per-class"
limit = 5

[[attacks]]
name = "pgd"
label = "PGD-20"
params = { steps = 20 }

[[attacks]]
name = "pgd"
label = "PGD-L2"
eps = 0.5
target = "untargeted"
params = { norm = "l2" }
"""


def _write(directory: Path, text: str, name: str = "campaign.toml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_config_parses_fields_defaults_and_overrides(model_dir: Path) -> None:
    config = load_config(_write(model_dir, GOOD))
    assert (config.name, config.seed, config.models) == ("unit", 7, ("tiny",))
    assert config.model_paths[0] == str(model_dir / "tiny")  # relative to the config file, not the cwd
    assert config.data.synth == {"frames": 4, "size": 16, "n_test": 30} and config.data.name == "synth-test"
    assert (config.selection.mode, config.selection.limit) == ("one-per-class", 5)
    first, second = config.attacks
    assert (first.label, first.params, first.eps, first.budget, first.target) == (
        "PGD-20",
        {"steps": 20},
        0.03,
        None,  # the global budget is the black-box attacks': PGD is white-box
        "random",
    )
    assert (second.eps, second.target, second.params) == (0.5, "untargeted", {"norm": "l2"})
    # The hash follows the content, not its formatting.
    assert parse_config(GOOD + "\n# a comment\n", base_dir=model_dir).config_hash == config.config_hash
    assert (
        parse_config(GOOD.replace("seed = 7", "seed = 8"), base_dir=model_dir).config_hash
        != config.config_hash
    )


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (lambda t: t.replace('name = "unit"', 'name = "unit'), "", "invalid TOML"),
        (lambda t: t.replace('name = "unit"\n', ""), "name", "missing"),
        (lambda t: t.replace("seed = 7", "seed = 7\ncolour = 1"), "colour", "unknown field"),
        (
            lambda t: t.replace('name = "pgd"\nlabel = "PGD-20"', 'name = "nope"\nlabel = "PGD-20"'),
            "attacks[0].name",
            "unknown attack method 'nope'",
        ),
        (lambda t: t.replace("steps = 20", "stepz = 20"), "attacks[0].params.stepz", "no parameter 'stepz'"),
        (
            lambda t: t.replace('models = ["tiny"]', 'models = ["no-such-model"]'),
            "models[0]",
            "unknown model 'no-such-model'",
        ),
        (
            lambda t: t.replace(
                'source = "synthetic"\nsplit = "test"\nframes = 4\nsize = 16\nn_test = 30',
                'source = "folder"\nroot = "missing-root"\nlayout = "ucf101"',
            ),
            "data.root",
            "does not exist",
        ),
        (
            lambda t: t.replace(
                'source = "synthetic"\nsplit = "test"\nframes = 4\nsize = 16\nn_test = 30',
                'source = "folder"\nroot = "."\nlayout = "youtube"',
            ),
            "data.layout",
            "must be one of ucf101, hmdb51, kinetics, folders",
        ),
        (
            lambda t: t.replace(
                'source = "synthetic"\nsplit = "test"\nframes = 4\nsize = 16\nn_test = 30',
                'source = "folder"\nroot = "."\nlayout = "folders"\nfold = 2',
            ),
            "data.fold",
            "is not an option of layout 'folders'",
        ),
        (
            lambda t: t.replace(
                'source = "synthetic"\nsplit = "test"\nframes = 4\nsize = 16\nn_test = 30',
                'source = "folder"\nroot = "."\nlayout = "kinetics"',
            ),
            "data.csv",
            "no annotation CSV for the val split",
        ),
        (
            lambda t: t.replace('mode = "one-per-class"\nlimit = 5', 'mode = "first-n"'),
            "selection.limit",
            "required",
        ),
        (lambda t: t.replace('label = "PGD-L2"', 'label = "PGD-20"'), "attacks[1].label", "used twice"),
        (lambda t: t.replace('target = "random"', 'target = "sideways"'), "target", "untargeted"),
        (lambda t: t.replace("eps = 0.03", "eps = -1"), "eps", "positive number"),
        (lambda t: t.replace("size = 16", "size = 4"), "data", "SynthConfig.size"),
    ],
)
def test_config_errors_are_one_line_naming_file_and_field(
    model_dir: Path, change, field: str, problem: str
) -> None:
    path = _write(model_dir, change(GOOD), "bad.toml")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {field}" if field else str(path)), message
    assert problem in message, message


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml")


def test_select_one_per_class_takes_first_correct_video_per_class_in_order() -> None:
    predictions = {0: (1, 1), 1: (2, 0), 2: (2, 2), 3: (1, 1), 4: (0, 0), 5: (3, 1)}
    assert select_one_per_class([5, 3, 1, 0, 2, 4], predictions, None) == [4, 3, 2]  # sorted by class
    assert select_one_per_class([5, 3, 1, 0, 2, 4], predictions, 2) == [3, 2]  # first two classes met
    assert select_one_per_class([9, 8], predictions, None) == []  # unevaluated videos are skipped


def test_random_targets_are_deterministic_never_the_label_and_cover_classes() -> None:
    targets = [resolve_target("random", 0, "synth-test", video, video % 10, 10) for video in range(300)]
    assert targets == [
        resolve_target("random", 0, "synth-test", video, video % 10, 10) for video in range(300)
    ]
    assert all(t != v % 10 and 0 <= t < 10 for v, t in enumerate(targets))
    assert set(targets) == set(range(10))
    assert targets != [
        resolve_target("random", 1, "synth-test", video, video % 10, 10) for video in range(300)
    ]
    assert resolve_target("untargeted", 0, "d", 3, 2, 10) is None
    assert resolve_target(4, 0, "d", 3, 2, 10) == 4


def test_item_seeds_depend_on_every_part_of_the_identity() -> None:
    base = item_seed(0, "d", "m", "a", 1)
    assert base == item_seed(0, "d", "m", "a", 1)
    others = {
        item_seed(1, "d", "m", "a", 1),
        item_seed(0, "e", "m", "a", 1),
        item_seed(0, "d", "n", "a", 1),
        item_seed(0, "d", "m", "b", 1),
        item_seed(0, "d", "m", "a", 2),
    }
    assert base not in others and len(others) == 5
    assert 0 <= base < 2**31


def _row(
    attack: str, video: int, status: str, success: bool = False, queries: int = 0, **extra: object
) -> dict:
    row = {
        "campaign": "c",
        "dataset": "d",
        "model": "m",
        "attack": attack,
        "video": video,
        "method": "pgd",
        "threat": "scores",
        "status": status,
        "success": success,
        "success_uint8": success,
        "queries": queries,
        "iterations": 3,
        "seconds": 1.0,
        "map": 2.0 if success else 9.0,
        "map_star": 4.0,
        "frame_sparsity": 0.5,
        "pixel_sparsity": 0.25,
        "thickness": 1.0,
        "roughness": 0.5,
        "trace": "[]",
        "video_path": None,
    }
    row.update(extra)
    return row


def test_store_keeps_one_row_per_item_and_reports_progress(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as store:
        keys = [("c", "d", "m", "a", v) for v in range(3)]
        store.set_plan("c", keys)
        assert store.insert_result(_row("a", 0, "success", True, 10))
        assert not store.insert_result(_row("a", 0, "failure", False, 99))  # duplicate identity: ignored
        assert store.insert_result(_row("a", 1, "error", error="ValueError: boom"))
        assert [r["status"] for r in store.rows()] == ["success", "error"]
        assert store.done_keys("c") == {keys[0], keys[1]}
        (progress,) = store.progress()
        assert (progress["planned"], progress["done"], progress["failed"], progress["pending"]) == (
            3,
            1,
            1,
            1,
        )
        assert store.delete_errors("c") == 1 and store.done_keys("c") == {keys[0]}
        store.check_settings(("c", "d", "m", "a"), "h1", "first")
        with pytest.raises(ValueError, match="other settings"):
            store.check_settings(("c", "d", "m", "a"), "h2", "second")
    with pytest.raises(ValueError, match="no campaign database"):
        Store(tmp_path / "absent.sqlite", readonly=True)


def test_summary_follows_the_papers_conventions() -> None:
    rows = [
        _row("A", 0, "success", True, 100, record='{"success_h264": true}'),
        _row("A", 1, "success", True, 300, record={"success_h264": False}),
        _row("A", 2, "success", True, 1000, record={"success_h264": False}),
        _row("A", 3, "failure", False, 5000, record={"success_h264": False}),
        _row("A", 4, "clean-misclassified"),
        _row("A", 5, "error", error="RuntimeError: x"),
        _row("B", 0, "failure", False, 5000, threat="white-box"),
    ]
    a, b = summarize(rows)
    assert (a.items, a.n, a.misclassified, a.errors) == (6, 4, 1, 1)
    assert a.success_rate == 0.75
    assert a.anq == pytest.approx(1400 / 3) and a.mq == 300  # over successful attacks only
    assert a.map == 2.0  # perturbation metrics over successful attacks only
    assert math.isnan(b.anq) and b.success_rate == 0.0  # white-box: no queries reported
    table = markdown_table([a, b])
    lines = table.strip().splitlines()
    assert lines[0].startswith("| model | method | n | SR |") and len(lines) == 4
    assert "| m | A | 4 | 75.0% | 75.0% | 25.0% | 467 | 300 |" in table  # H.264 SR from the records
    assert "| m | B | 1 | 0.0% | 0.0% | – |" in table  # rows without an H.264 check: not a number


def test_every_campaign_config_shipped_in_configs_parses() -> None:
    """The paper-table configs in configs/ (those with [[attacks]]) load: load_config raises a ConfigError
    naming the file for an unknown method, an unknown parameter or a bad value."""
    shipped = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))
    campaigns = [path for path in shipped if "[[attacks]]" in path.read_text()]
    assert len(campaigns) >= 40
    for path in campaigns:
        load_config(path)
