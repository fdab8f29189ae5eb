"""Running campaigns: resume, SIGKILL safety, workers, error isolation, selection cache, report, CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vidattack.campaign import Store, load_config, run_campaign, write_report
from vidattack.campaign.execution import plan_campaign

CLI = [sys.executable, "-c", "from vidattack.cli import main; main()"]
IDENTITY = ("campaign", "dataset", "model", "attack", "video")
OUTCOME = (
    "status",
    "label",
    "target",
    "clean_pred",
    "adv_label",
    "success",
    "success_uint8",
    "queries",
    "iterations",
    "linf",
    "l2",
    "map",
    "map_star",
    "frame_sparsity",
    "pixel_sparsity",
    "seed",
    "trace",
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkpoints for 4-frame 16x16 test-bed clips: tiny random C3Ds ``c3d-a``/``c3d-b`` and ``lrcn-t``.

    The random C3Ds are nearly constant functions (cheap, enough for bookkeeping tests); ``lrcn-t`` is a
    tiny LRCN trained for a second, whose predictions depend on the video, so that one-per-class
    selection and untargeted attacks have something to work on.
    """
    from vidattack import models
    from vidattack.data import synthetic

    directory = tmp_path_factory.mktemp("campaign")
    for name, seed in (("c3d-a", 0), ("c3d-b", 1)):
        net = models.build("c3d", num_classes=10, width=1 / 16, fc_dim=16, fc_pool=(1, 2, 2), dropout=0.0,
                           num_frames=4, input_size=(16, 16), seed=seed)  # fmt: skip
        models.save(net, directory / name)
    train = synthetic.generate("train", synthetic.SynthConfig(frames=4, size=16), indices=range(120))
    lrcn = models.build("lrcn", num_classes=10, width=0.25, feature_dim=16, hidden_size=16, num_frames=4,
                        input_size=(16, 16), seed=0)  # fmt: skip
    models.train(lrcn, (train.videos, train.labels), epochs=2, lr=1e-2, batch_size=40, progress=False)
    models.save(lrcn, directory / "lrcn-t")
    return directory


def _config(
    directory: Path,
    name: str,
    *,
    models: str = '["c3d-a", "c3d-b"]',
    selection: str = 'mode = "first-n"\nlimit = 3',
    attacks: str = '[[attacks]]\nname = "pgd"\nlabel = "PGD"\nparams = { steps = 8 }',
    target: str = "random",
    eps: float = 0.3,
) -> Path:
    # Random tiny models predict almost one class, so untargeted attacks would mostly skip misclassified
    # clean videos: tests use random targets and a large eps to make the attacks do real work.
    text = f"""
name = "{name}"
seed = 11
models = {models}
target = "{target}"
eps = {eps}

[data]
source = "synthetic"
frames = 4
size = 16
n_test = 40

[selection]
{selection}

{attacks}
"""
    path = directory / f"{name}.toml"
    path.write_text(text)
    return path


def _outcomes(rows: list[dict]) -> dict[tuple, tuple]:
    return {tuple(row[k] for k in IDENTITY): tuple(row[k] for k in OUTCOME) for row in rows}


def test_run_then_resume_skips_finished_items(workdir: Path) -> None:
    config = load_config(
        _config(
            workdir,
            "resume",
            attacks=(
                '[[attacks]]\nname = "pgd"\nlabel = "PGD"\nparams = { steps = 8 }\n'
                '[[attacks]]\nname = "pgd"\nlabel = "PGD-L2"\neps = 2.0\nparams = { norm = "l2", steps = 8 }'
            ),
        )
    )
    db = workdir / "resume.sqlite"
    first = run_campaign(config, db, progress=False)
    assert (first.planned, first.already_done, first.ran, first.errors) == (12, 0, 12, 0)
    second = run_campaign(config, db, progress=False)
    assert (second.planned, second.already_done, second.ran) == (12, 12, 0)
    with Store(db, readonly=True) as store:
        rows = store.rows()
    assert len(rows) == 12 and len({tuple(r[k] for k in IDENTITY) for r in rows}) == 12
    assert {r["status"] for r in rows} <= {"success", "failure"}
    assert any(r["success"] for r in rows)  # the attacks do real work
    row = rows[0]
    assert row["config_hash"] == config.config_hash and row["version"] and row["trace"].startswith("[[")
    assert row["target"] is not None and row["target"] != row["label"] and row["wall_seconds"] > 0
    # Changing what an attack computes under the same labels is refused rather than mixed in.
    changed = load_config(_config(workdir, "resume", eps=0.1))
    with pytest.raises(ValueError, match="other settings"):
        run_campaign(changed, db, progress=False)


def test_two_workers_give_the_same_rows_as_one(workdir: Path) -> None:
    # Items of about half a second each: with 8 PGD steps (0.1 s) the worker spawned first could finish
    # all six before the second had imported torch, and "both workers did work" failed by timing alone.
    attacks = '[[attacks]]\nname = "pgd"\nlabel = "PGD"\nparams = { steps = 100 }'
    config = load_config(_config(workdir, "workers", attacks=attacks))
    run_campaign(config, workdir / "w1.sqlite", workers=1, progress=False)
    summary = run_campaign(config, workdir / "w2.sqlite", workers=2, progress=False)
    assert summary.ran == 6
    with (
        Store(workdir / "w1.sqlite", readonly=True) as one,
        Store(workdir / "w2.sqlite", readonly=True) as two,
    ):
        rows_one, rows_two = one.rows(), two.rows()
    assert len({r["worker"] for r in rows_two}) == 2  # both workers did work
    assert _outcomes(rows_one) == _outcomes(rows_two)


def test_failing_items_are_recorded_and_the_campaign_goes_on(workdir: Path) -> None:
    attacks = (
        '[[attacks]]\nname = "sparse"\nlabel = "broken"\nparams = { mask = "first:99", steps = 2 }\n'
        '[[attacks]]\nname = "pgd"\nlabel = "fine"\nparams = { steps = 4 }'
    )
    config = load_config(_config(workdir, "errors", models='["c3d-a"]', attacks=attacks))
    db = workdir / "errors.sqlite"
    summary = run_campaign(config, db, progress=False)
    assert (summary.ran, summary.errors) == (6, 3)
    with Store(db, readonly=True) as store:
        rows = store.rows()
        progress = {p["attack"]: p for p in store.progress()}
    broken = [r for r in rows if r["attack"] == "broken"]
    assert all(
        r["status"] == "error" and r["error"].startswith("ValueError: mask 'first:99'") for r in broken
    )
    assert all(r["status"] in ("success", "failure") for r in rows if r["attack"] == "fine")
    assert (progress["broken"]["failed"], progress["fine"]["done"]) == (3, 3)
    # Errored items are not re-run by a plain resume, only with retry_errors.
    assert run_campaign(config, db, progress=False).ran == 0
    assert run_campaign(config, db, progress=False, retry_errors=True).ran == 3


def test_campaign_check_rejects_bad_params_budgets_and_eps_naming_the_field(workdir: Path) -> None:
    from vidattack.campaign import ConfigError

    cases = [
        ('[[attacks]]\nname = "pgd"\nparams = { steps = "two" }', "attacks[0].params.steps"),
        ('[[attacks]]\nname = "pgd"\nparams = { steps = 0 }', "attacks[0].params.steps"),
        ('[[attacks]]\nname = "pgd"\neps = 3.0', "attacks[0].eps"),
        ('[[attacks]]\nname = "vbad"\nbudget = 99999999999999999999', "budget"),
        ('[[attacks]]\nname = "heuristic"\neps = 0.05', "minimising"),
    ]
    for attacks, needle in cases:
        with pytest.raises((ConfigError, ValueError), match=re.escape(needle)) as caught:
            load_config(_config(workdir, "bad", attacks=attacks))
        assert ".toml" in str(caught.value)  # the file is named too


def test_one_per_class_picks_correct_videos_and_caches_clean_predictions(workdir: Path) -> None:
    import torch

    from vidattack import models
    from vidattack.data import synthetic

    config = load_config(_config(workdir, "opc", models='["c3d-a"]', selection='mode = "one-per-class"'))
    with Store(workdir / "opc.sqlite") as store:
        items = plan_campaign(config, store)
        cached = store.conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
        again = plan_campaign(config, store)
        assert (
            store.conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == cached
        )  # no re-evaluation
    assert [i.video for i in items] == [i.video for i in again] and items
    videos = [i.video for i in items]
    clips = synthetic.generate("test", synthetic.SynthConfig(frames=4, size=16, n_test=40), indices=videos)
    with torch.no_grad():
        preds = models.load(workdir / "c3d-a")(clips.videos).argmax(1)
    assert preds.tolist() == clips.labels.tolist()  # only correctly classified videos
    assert len(set(clips.labels.tolist())) == len(videos)  # one per class
    assert cached <= 40


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0


def test_sigkill_then_rerun_leaves_exactly_one_row_per_item(workdir: Path) -> None:
    # Items slow enough (PGD steps without early stop) that the kill lands mid-campaign.
    attacks = '[[attacks]]\nname = "pgd"\nlabel = "slow"\nparams = { steps = 60, early_stop = false }'
    config_path = _config(
        workdir, "kill", models='["c3d-a"]', selection='mode = "first-n"\nlimit = 6', attacks=attacks
    )
    db = workdir / "kill.sqlite"
    args = ["campaign", "run", str(config_path), "--db", str(db), "--no-progress"]
    process = subprocess.Popen(
        [*CLI, *args],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 90
    while _count(db) < 1 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL, "the runner finished before it could be killed"
    committed = _count(db)
    assert 1 <= committed < 6
    # The same command again (in this process, to spare a second interpreter start-up).
    code, out, error = _cli(args)
    assert code == 0, error
    assert f"6 items, {committed} already done, ran {6 - committed} (0 errors)" in out
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = conn.execute("SELECT campaign, dataset, model, attack, video FROM results").fetchall()
        statuses = {row[0] for row in conn.execute("SELECT status FROM results")}
    assert sorted(key[4] for key in keys) == list(range(6))  # every item, exactly once
    assert statuses <= {"success", "failure"}


def test_two_runners_on_one_database_compute_each_item_once(workdir: Path) -> None:
    attacks = '[[attacks]]\nname = "pgd"\nlabel = "slow"\nparams = { steps = 40, early_stop = false }'
    config_path = _config(
        workdir, "two", models='["c3d-a"]', selection='mode = "first-n"\nlimit = 6', attacks=attacks
    )
    db = workdir / "two.sqlite"
    args = [*CLI, "campaign", "run", str(config_path), "--db", str(db), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runners = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]  # fmt: skip
    outputs = [runner.communicate(timeout=300) for runner in runners]
    assert all(runner.returncode == 0 for runner in runners), [err for _, err in outputs]
    ran = [int(re.search(r"ran (\d+)", out).group(1)) for out, _ in outputs]
    assert sum(ran) == 6  # no item computed by both
    with sqlite3.connect(db) as conn:
        videos = sorted(row[0] for row in conn.execute("SELECT video FROM results"))
        claims = conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0]
    assert videos == list(range(6)) and claims == 0


def test_batched_videos_give_the_same_rows_for_any_batch(workdir: Path) -> None:
    attacks = ('[[attacks]]\nname = "srbad"\nlabel = "SR"\nbudget = 120\nparams = { patches = 2 }\n'
               '[[attacks]]\nname = "pgd"\nlabel = "PGD"\nparams = { steps = 3 }')  # fmt: skip
    config = load_config(_config(workdir, "batched", models='["lrcn-t"]', attacks=attacks))
    rows = {}
    for k in (1, 4):
        db = workdir / f"batched{k}.sqlite"
        summary = run_campaign(config, db, progress=False, batch_videos=k, forward_batch=8)
        assert summary.errors == 0 and summary.ran == 6
        with Store(db, readonly=True) as store:
            rows[k] = {(r["attack"], r["video"]): (r["status"], r["queries"], r["adv_label"], r["linf"])
                       for r in store.rows()}  # fmt: skip
    assert rows[1] == rows[4]
    assert any(queries for (attack, _), (_, queries, _, _) in rows[4].items() if attack == "SR")


def test_report_tables_plots_and_examples(workdir: Path) -> None:
    attacks = (
        '[[attacks]]\nname = "pgd"\nlabel = "PGD"\nparams = { steps = 10 }\n'
        '[[attacks]]\nname = "pgd"\nlabel = "PGD-random-target"\ntarget = "random"\nparams = { steps = 10 }'
    )
    models = '["lrcn-t", "c3d-a"]'
    selection = 'mode = "one-per-class"\nlimit = 3'
    config = load_config(_config(workdir, "report", models=models, selection=selection, attacks=attacks,
                                 target="untargeted"))  # fmt: skip
    db = workdir / "report.sqlite"
    summary = run_campaign(config, db, save_videos=True, progress=False)
    saved = sorted((workdir / "report.videos").rglob("*.mkv"))
    assert saved and all(p.with_suffix(".npz").is_file() for p in saved)
    written = write_report(db, workdir / "report-out")
    markdown = written["markdown"].read_text()
    assert markdown.count("| lrcn-t |") == 2 and markdown.count("| c3d-a |") == 2  # model x method rows
    assert "## synth-test" in markdown and "sr_synth-test_lrcn-t_white-box.png" in markdown
    assert "example_00.png" in markdown  # a successful untargeted attack on the trained LRCN
    page = written["html"].read_text()
    assert page.count("data:image/png;base64,") >= 3 and "src='sr_" not in page  # self-contained
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown):
        assert (workdir / "report-out" / image).is_file()
    assert len(written["csv"].read_text().splitlines()) == 1 + summary.planned


def _cli(args: list[str]) -> tuple[int, str, BaseException | None]:
    """Run ``vidattack ARGS`` through typer's CliRunner: exit code, stdout, and the exception if any.

    (``vidattack.cli.main`` prints an exception as its one-line ``error: ...``; the message checked here
    is that line's text.)
    """
    from typer.testing import CliRunner

    from vidattack.cli import _register_all, app

    if not any(group.name == "campaign" for group in app.registered_groups):
        _register_all()
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.stdout, result.exception


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.replace("seed = 11", "seed = [11"), "invalid TOML"),
        (
            lambda t: t.replace('models = ["c3d-a"]', 'models = ["c3d-zz"]'),
            "models[0]: unknown model 'c3d-zz'",
        ),
        (
            lambda t: t.replace('name = "pgd"', 'name = "warp"'),
            "attacks[0].name: unknown attack method 'warp'",
        ),
        (
            lambda t: t.replace(
                'source = "synthetic"\nframes = 4\nsize = 16\nn_test = 40',
                'source = "folder"\nlayout = "hmdb51"\nroot = "/nonexistent/hmdb51"',
            ),
            "data.root: dataset root /nonexistent/hmdb51 does not exist",
        ),
    ],
)
def test_cli_errors_are_one_line(workdir: Path, edit, expected: str) -> None:
    good = _config(workdir, "cli", models='["c3d-a"]')
    bad = workdir / "cli-bad.toml"
    bad.write_text(edit(good.read_text()))
    code, _, error = _cli(["campaign", "run", str(bad), "--db", str(workdir / "cli.sqlite"), "--no-progress"])
    assert code != 0 and isinstance(error, ValueError)
    message = str(error)
    assert message.startswith(f"{bad}: ") and expected in message, message
    assert "\n" not in message


def test_cli_run_status_report_export(workdir: Path) -> None:
    config = _config(workdir, "cli-ok", models='["c3d-a"]')
    db = workdir / "cli-ok.sqlite"
    code, out, _ = _cli(["campaign", "check", str(config)])
    assert code == 0 and "1 model(s) x 1 attack(s)" in out
    code, out, _ = _cli(["campaign", "run", str(config), "--db", str(db), "--no-progress"])
    assert code == 0 and "3 items, 0 already done, ran 3 (0 errors)" in out
    code, out, _ = _cli(["campaign", "status", "--db", str(db)])
    assert code == 0 and "total: 3 done, 0 failed, 0 pending of 3" in out
    report_args = [
        "campaign",
        "report",
        "--db",
        str(db),
        "--out",
        str(workdir / "cli-report"),
        "--csv",
        str(workdir / "cli.csv"),
    ]
    code, out, _ = _cli(report_args)
    assert code == 0 and "wrote html" in out
    assert (workdir / "cli-report" / "report.html").is_file() and (workdir / "cli.csv").is_file()
    code, _, error = _cli(["campaign", "status", "--db", str(workdir / "absent.sqlite")])
    assert code != 0 and str(error).startswith("no campaign database at")


def _run_folder_campaign(workdir: Path, name: str, root: Path, layout: str, model: str, *, target: str, limit: int):
    """A PGD campaign on the data-set folder ``root``: its summary and rows by video index."""
    text = f"""
name = "{name}"
models = ["{model}"]
target = "{target}"
eps = 0.3
[data]
source = "folder"
layout = "{layout}"
root = "{root}"
[selection]
mode = "first-n"
limit = {limit}
[[attacks]]
name = "pgd"
label = "PGD"
params = {{ steps = 4 }}
"""
    path = workdir / f"{name}.toml"
    path.write_text(text)
    summary = run_campaign(load_config(path), workdir / f"{name}.sqlite", progress=False)
    with Store(workdir / f"{name}.sqlite", readonly=True) as store:
        return summary, {row["video"]: row for row in store.rows()}


def test_folder_dataset_campaign_with_a_corrupt_video(workdir: Path) -> None:
    from vidattack.data import synthetic

    root = workdir / "ucf"
    config = synthetic.SynthConfig(frames=4, size=16, n_train=0, n_test=6)
    synthetic.write_layout(root, "ucf101", config, splits=("test",))
    listed = (root / "ucfTrainTestlist" / "testlist01.txt").read_text().split()
    (root / listed[1]).write_bytes(b"not a video")  # a real download always has a few of these
    summary, rows = _run_folder_campaign(workdir, "folder", root, "ucf101", "c3d-a", target="random", limit=3)
    assert (summary.ran, summary.errors) == (3, 1)
    assert rows[1]["status"] == "error" and "ValueError" in rows[1]["error"]
    assert rows[0]["status"] in ("success", "failure") and rows[0]["video_id"].endswith(
        listed[0].split("/")[-1]
    )
    clips = synthetic.generate("test", config, indices=[0, 2])
    assert [
        rows[0]["label"],
        rows[2]["label"],
    ] == clips.labels.tolist()  # the layout's labels are the test bed's


def test_plain_class_folders_campaign_labels_are_the_model_classes(workdir: Path) -> None:
    from vidattack import models
    from vidattack.data import synthetic

    # ROOT/test/CLASS/*.mkv with Kinetics' class names: sorted, they are not the model's order
    config = synthetic.SynthConfig(frames=4, size=16, n_train=0, n_test=10)
    synthetic.write_layout(workdir / "k", "kinetics", config, splits=("test",))
    net = models.build("c3d", class_names=synthetic.MOTION_CLASSES, width=1 / 16, fc_dim=16, fc_pool=(1, 2, 2),
                       dropout=0.0, num_frames=4, input_size=(16, 16), seed=0)  # fmt: skip
    models.save(net, workdir / "c3d-named")
    summary, rows = _run_folder_campaign(
        workdir, "plain", workdir / "k", "folders", "c3d-named", target="untargeted", limit=10
    )
    assert summary.errors == 0 and len(rows) == 10
    names = synthetic.layout_class_names("kinetics")
    for row in rows.values():  # the class folder each video sits in is the test bed's class of its label
        assert Path(row["video_id"]).parent.name == names[row["label"]]
    clips = synthetic.generate("test", config, indices=range(10))
    assert sorted(row["label"] for row in rows.values()) == sorted(clips.labels.tolist())


def test_campaign_against_a_remote_model(workdir: Path) -> None:
    from vidattack import models
    from vidattack.serving import ServedModel, build_app, start_server

    app = build_app([ServedModel.from_model("lrcn-t", models.load(workdir / "lrcn-t"))])
    handle = start_server(app)
    try:
        url = handle.url + "/v2/models/lrcn-t"
        attack = '[[attacks]]\nname = "opt"\nlabel = "Opt"\nbudget = 150'
        config = load_config(_config(workdir, "remote", models=f'["{url}"]', attacks=attack, target="untargeted"))
        summary = run_campaign(config, workdir / "remote.sqlite", progress=False)
        assert summary.errors == 0 and summary.ran == 3
        with Store(workdir / "remote.sqlite", readonly=True) as store:
            rows = store.rows()
        attacked = [row for row in rows if row["status"] in ("success", "failure")]
        assert attacked and {row["model"] for row in rows} == {url}
        assert all(0 < row["queries"] <= 150 for row in attacked)
        assert app.state.server.store.used("anonymous", "lrcn-t") >= sum(row["queries"] for row in attacked)
    finally:
        handle.stop()


def test_report_draws_distortion_curves_of_minimising_label_only_methods(workdir: Path) -> None:
    attacks = '[[attacks]]\nname = "opt"\nlabel = "Opt"\nbudget = 400\nparams = { map_target = 0.001 }'
    config = load_config(_config(workdir, "distortion", models='["lrcn-t"]', attacks=attacks,
                                 selection='mode = "one-per-class"\nlimit = 2', target="untargeted"))  # fmt: skip
    db = workdir / "distortion.sqlite"
    run_campaign(config, db, progress=False)
    with Store(db, readonly=True) as store:
        rows = [row for row in store.rows() if row["status"] in ("success", "failure")]
    assert rows
    for row in rows:
        trace = json.loads(row["record"])["distortion_trace"]
        assert all(0 < q <= 400 for q, _, _ in trace)
        if row["status"] == "failure" and not trace:
            continue  # nothing adversarial found: an empty trace, still counted in the medians
        maps = [value for _, _, value in trace]
        assert maps == sorted(maps, reverse=True)  # the best point's MAP never rises
        assert trace[-1][2] == pytest.approx(row["map"], rel=1e-3, abs=0.05)  # the returned video's MAP
    written = write_report(db, workdir / "distortion-out")
    markdown = written["markdown"].read_text()
    assert "### Distortion vs. budget" in markdown and "| Opt |" in markdown
    for name in ("linf", "map"):
        assert (workdir / "distortion-out" / f"distortion_synth-test_lrcn-t_{name}.png").is_file()
    assert "sr_synth-test_lrcn-t_labels.png" in markdown
