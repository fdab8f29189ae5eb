"""Campaign reports: tables in the papers' style, success-vs-queries curves and example frame grids.

:func:`summarize` turns store rows into one summary per (data set, model, attack); :func:`markdown_table`
renders summaries as a markdown table (reused for BENCHMARKS.md); :func:`report_tables` gives one table
per data set straight from a database; :func:`write_report` writes ``report.md``, a self-contained
``report.html`` (images embedded as base64), the PNGs and ``rows.csv``. Plots come from
:mod:`vidattack.viz`, the same code as ``vidattack attack --out``.

Conventions (as in the papers): SR is the share of attacked videos that became adversarial; videos the
model already misclassified (untargeted) are not attacked and not counted. ANQ / MQ are the mean /
median queries of successful attacks (black-box methods; white-box methods report iterations). MAP,
MAP*, sparsities, thickness and roughness are averaged over successful attacks.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidattack import __version__, metrics
from vidattack.campaign.store import RESULT_COLUMNS, Store
from vidattack.curves import DISTORTIONS, median_distortion_curve
from vidattack.naming import slug

__all__ = [
    "Summary",
    "summarize",
    "markdown_table",
    "report_tables",
    "write_report",
    "write_csv",
    "TABLE_COLUMNS",
]

ATTACKED = ("success", "failure")

# (header, Summary attribute, format) of the report table.
TABLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("model", "model", "s"),
    ("method", "attack", "s"),
    ("n", "n", "d"),
    ("SR", "success_rate", "pct"),
    ("SR 8-bit", "success_rate_uint8", "pct"),
    ("SR H.264", "success_rate_h264", "pct"),
    ("ANQ", "anq", "q"),
    ("MQ", "mq", "q"),
    ("iters", "mean_iterations", "f1"),
    ("MAP", "map", "f2"),
    ("MAP*", "map_star", "f2"),
    ("frame S", "frame_sparsity", "pct"),
    ("pixel S", "pixel_sparsity", "pct"),
    ("thick. %", "thickness", "f2"),
    ("rough. %", "roughness", "f2"),
    ("sec", "mean_seconds", "f2"),
    ("miscl.", "misclassified", "d"),
    ("failures", "errors", "d"),
)


@dataclass(frozen=True)
class Summary:
    """Aggregate results of one (campaign, data set, model, attack).

    Attributes:
        n: attacked videos (success or failure); ``items`` counts every row including errors.
        success_rate, success_rate_uint8: SR in [0, 1], before and after rounding to 8-bit frames.
        success_rate_h264: SR after H.264 compression at libx264's default quality (``nan`` for rows
            recorded before vidattack measured it).
        anq, mq: mean / median queries of successful attacks (``nan`` for white-box or no success).
        mean_iterations: mean iterations of successful attacks.
        map, map_star, frame_sparsity, pixel_sparsity, thickness, roughness: means over successful attacks.
        mean_seconds: mean attack time of attacked videos.
        misclassified: videos not attacked because the clean model already got them wrong.
        skipped: videos not attacked for another reason (a fixed target equal to the true class).
        errors: items that raised (bad video, exception in the attack).
    """

    campaign: str
    dataset: str
    model: str
    attack: str
    method: str
    threat: str
    items: int
    n: int
    success_rate: float
    success_rate_uint8: float
    success_rate_h264: float
    anq: float
    mq: float
    mean_iterations: float
    map: float
    map_star: float
    frame_sparsity: float
    pixel_sparsity: float
    thickness: float
    roughness: float
    mean_seconds: float
    misclassified: int
    skipped: int
    errors: int


def _mean(values: Sequence[float | None]) -> float:
    kept = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(kept) / len(kept) if kept else math.nan


def summarize(rows: Sequence[dict[str, Any]]) -> list[Summary]:
    """One :class:`Summary` per (campaign, data set, model, attack), in the order rows first appear."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["campaign"], row["dataset"], row["model"], row["attack"]), []).append(row)
    summaries = []
    for (campaign, dataset, model, attack), members in groups.items():
        attacked = [row for row in members if row["status"] in ATTACKED]
        wins = [row for row in attacked if row["success"]]
        threat = next((row["threat"] for row in members if row.get("threat")), "")
        success = [bool(row["success"]) for row in attacked]
        queries = [int(row["queries"] or 0) for row in attacked]
        black_box = threat != "white-box"
        summaries.append(
            Summary(
                campaign=campaign,
                dataset=dataset,
                model=model,
                attack=attack,
                method=next((row["method"] for row in members if row.get("method")), ""),
                threat=threat,
                items=len(members),
                n=len(attacked),
                success_rate=metrics.success_rate(success),
                success_rate_uint8=metrics.success_rate([bool(row["success_uint8"]) for row in attacked]),
                success_rate_h264=_h264_success_rate(attacked),
                anq=metrics.anq(queries, success) if black_box else math.nan,
                mq=metrics.mq(queries, success) if black_box else math.nan,
                mean_iterations=_mean([row["iterations"] for row in wins]),
                **{
                    name: _mean([row[name] for row in wins])
                    for name in (
                        "map",
                        "map_star",
                        "frame_sparsity",
                        "pixel_sparsity",
                        "thickness",
                        "roughness",
                    )
                },
                mean_seconds=_mean([row["seconds"] for row in attacked]),
                misclassified=sum(row["status"] == "clean-misclassified" for row in members),
                skipped=sum(row["status"] == "skipped" for row in members),
                errors=sum(row["status"] == "error" for row in members),
            )
        )
    return summaries


def _h264_success_rate(attacked: Sequence[dict[str, Any]]) -> float:
    """SR after H.264 re-encoding, read from each row's record (absent in rows from older versions)."""
    flags = [_record(row).get("success_h264") for row in attacked]
    known = [bool(flag) for flag in flags if flag is not None]
    return metrics.success_rate(known) if known and len(known) == len(flags) else math.nan


def _record(row: dict[str, Any]) -> dict[str, Any]:
    record = row.get("record")
    if isinstance(record, str):
        try:
            record = json.loads(record)
        except json.JSONDecodeError:
            return {}
    return record if isinstance(record, dict) else {}


def _format(value: Any, kind: str) -> str:
    if kind == "s":
        return str(value)
    if kind == "d":
        return str(int(value))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "q":
        return f"{value:,.0f}"
    if kind == "f1":
        return f"{value:.1f}"
    return f"{value:.2f}"


def _cells(summary: Summary) -> list[str]:
    return [_format(getattr(summary, attribute), kind) for _, attribute, kind in TABLE_COLUMNS]


def markdown_table(summaries: Sequence[Summary]) -> str:
    """A markdown table of ``summaries`` (model x method rows) in the papers' style; ends with a newline."""
    headers = [header for header, _, _ in TABLE_COLUMNS]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" if kind == "s" else "---:" for _, _, kind in TABLE_COLUMNS) + "|",
    ]
    for summary in summaries:
        cells = [cell.replace("|", "\\|") for cell in _cells(summary)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _html_table(summaries: Sequence[Summary]) -> str:
    head = "".join(f"<th>{html.escape(header)}</th>" for header, _, _ in TABLE_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in _cells(summary)) + "</tr>"
        for summary in summaries
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def report_tables(db: str | Path | Store, campaign: str | None = None) -> dict[str, str]:
    """``{data set: markdown table}`` of a campaign database (all campaigns unless ``campaign``)."""
    store = db if isinstance(db, Store) else Store(db, readonly=True)
    try:
        summaries = summarize(store.rows(campaign))
    finally:
        if store is not db:
            store.close()
    tables: dict[str, list[Summary]] = {}
    for summary in summaries:
        tables.setdefault(summary.dataset, []).append(summary)
    return {dataset: markdown_table(group) for dataset, group in tables.items()}


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write result rows to CSV (one line per item; the trace and the full record stay in the database)."""
    path = Path(path)
    columns = ["campaign", "dataset", "model", "attack", "video"] + [
        name for name, _ in RESULT_COLUMNS if name not in ("record", "trace")
    ]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row.get(key) for key in columns})
    return path


def _trace_for_curve(row: dict[str, Any]) -> list[tuple[int, float, bool]]:
    trace = [tuple(point) for point in json.loads(row["trace"] or "[]")]
    if row["success"] and not any(point[2] for point in trace):
        # Success decided after the last trace point (e.g. a final check): count it where the attack stopped.
        x = row["iterations"] if row.get("threat") == "white-box" else row["queries"]
        trace.append((int(x or 0), math.nan, True))
    return trace  # type: ignore[return-value]


_CURVE_KINDS = {
    "white-box": ("iterations", "SR vs. iterations (white-box)"),
    "scores": ("queries", "success rate vs. queries (score-based)"),
    "labels": ("queries", "success rate vs. queries (label-only)"),
}


def _curves(
    rows: Sequence[dict[str, Any]], out: Path, budgets: dict[str, int | None]
) -> list[tuple[str, str, Path]]:
    """Success-rate PNGs per (data set, model, threat): score-based and label-only methods against
    queries, white-box methods against iterations (V-BAD Fig. 4 style)."""
    from vidattack import viz

    written = []
    panels: dict[tuple[str, str, str], dict[str, list[list[tuple[int, float, bool]]]]] = {}
    for row in rows:
        if row["status"] not in ATTACKED:
            continue
        threat = row.get("threat") if row.get("threat") in _CURVE_KINDS else "scores"
        curves = panels.setdefault((row["dataset"], row["model"], threat), {})
        curves.setdefault(row["attack"], []).append(_trace_for_curve(row))
    for (dataset, model, threat), curves in panels.items():
        axis, what = _CURVE_KINDS[threat]
        name = f"sr_{slug(dataset)}_{slug(model)}_{slug(threat)}.png"
        # The x axis spans the whole budget (or the longest run), so a curve that stays low is visible
        # as such instead of being squeezed against the last success.
        longest = max((int(point[0]) for traces in curves.values() for t in traces for point in t), default=0)
        if axis == "queries":
            limits = [budgets.get(label) for label in curves]
            right = max((b for b in limits if b), default=None) or longest or None
        else:
            right = longest or None
        viz.success_vs_queries(curves, out / name, max_queries=right, title=f"{dataset} / {model}: {what}",
                               xlabel=axis)  # fmt: skip
        written.append((dataset, f"{model} ({what})", out / name))
    return written


# Query counts at which the distortion table reads the curves (those within the budget, and the budget).
DISTORTION_CHECKPOINTS = (1_000, 5_000, 20_000)
_DISPLAY = {"linf": "L-inf", "map": "MAP"}
DISTORTION_LEGEND = (
    "Lower median over videos of the smallest L-inf ([0, 1] scale) / MAP (0-255) of an adversarial video the "
    "method had found within the query count ('-': fewer than half the videos had one yet)."
)


def _distortion_traces(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, list[list[list[float]]]]]:
    """``(data set, model) -> method -> per-video distortion traces`` of the rows that recorded one."""
    panels: dict[tuple[str, str], dict[str, list[list[list[float]]]]] = {}
    for row in rows:
        if row["status"] not in ATTACKED or not row.get("record"):
            continue
        record = json.loads(row["record"]) if isinstance(row["record"], str) else row["record"]
        if "distortion_trace" not in record:
            continue
        panels.setdefault((row["dataset"], row["model"]), {}).setdefault(row["attack"], []).append(
            record["distortion_trace"]
        )
    return panels


def _distortion_curves(
    rows: Sequence[dict[str, Any]], out: Path, budgets: dict[str, int | None]
) -> list[tuple[str, str, str, list[tuple[str, Path]]]]:
    """Distortion-vs-queries PNGs (median L-inf and MAP of the best adversarial so far) per (data set,
    model) for every method that records a distortion trace (the label-only minimising methods), each
    with a markdown table of the medians at :data:`DISTORTION_CHECKPOINTS`.

    Returns ``(data set, model, table, [(title, png), ...])`` per panel."""
    from vidattack import viz

    written = []
    for (dataset, model), curves in _distortion_traces(rows).items():
        budget = max((budgets.get(label) or 0 for label in curves), default=0) or max(
            (int(point[0]) for traces in curves.values() for t in traces for point in t), default=0
        )
        if budget <= 0:
            continue  # no budget recorded and nothing adversarial found: no axis to draw
        eps_values = {row["eps"] for row in rows
                      if (row["dataset"], row["model"]) == (dataset, model) and row["attack"] in curves}  # fmt: skip
        eps = next(iter(eps_values)) if len(eps_values) == 1 else None
        checkpoints = [q for q in DISTORTION_CHECKPOINTS if q < budget] + [budget]
        plots = []
        for distortion in DISTORTIONS:
            name = f"distortion_{slug(dataset)}_{slug(model)}_{distortion}.png"
            title = f"{dataset} / {model}: median {_DISPLAY[distortion]} vs. queries"
            viz.distortion_vs_queries(curves, out / name, max_queries=budget, distortion=distortion, eps=eps,
                                      title=title)  # fmt: skip
            plots.append((title, out / name))
        written.append((dataset, model, _distortion_table(curves, checkpoints), plots))
    return written


def _distortion_table(curves: dict[str, list[list[list[float]]]], checkpoints: Sequence[int]) -> str:
    """Markdown table: per method, the median L-inf and MAP of the best adversarial at each checkpoint."""
    header = ["method", "n"] + [f"{name} @ {q:,}" for q in checkpoints for name in ("L-inf", "MAP")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, traces in curves.items():
        cells = [method, str(len(traces))]
        for q in checkpoints:
            for name, digits in (("linf", 4), ("map", 2)):
                value = median_distortion_curve(traces, [q], DISTORTIONS[name][0])[0]
                cells.append(f"{value:.{digits}f}" if math.isfinite(value) else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _examples(rows: Sequence[dict[str, Any]], db_dir: Path, out: Path, limit: int) -> list[tuple[str, Path]]:
    """Frame grids of up to ``limit`` saved successful adversarial videos, one per (model, attack) first."""
    from vidattack import viz

    chosen: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for row in rows:
        # A success with no perturbation (clean video already at the target) shows nothing: skip it.
        if (
            row["status"] == "success"
            and row["video_path"]
            and (row["linf"] or 0) > 0
            and len(chosen) < limit
        ):
            key = (row["dataset"], row["model"], row["attack"])
            if key not in seen:
                seen.add(key)
                chosen.append(row)
    written = []
    for index, row in enumerate(chosen):
        tensors = (db_dir / row["video_path"]).with_suffix(".npz")
        if not tensors.is_file():
            continue
        with np.load(tensors) as data:
            clean = torch.from_numpy(data["clean"]).float().div(255.0)
            adversarial = torch.from_numpy(data["adversarial"]).float()
        caption = (
            f"{row['dataset']} / {row['model']} / {row['attack']}: video {row['video']} "
            f"({row['video_id']}), label {row['label']} -> {row['adv_label']}"
        )
        path = out / f"example_{index:02d}.png"
        viz.frame_grid(clean, adversarial, path, title=caption)
        written.append((caption, path))
    return written


def _budgets(store: Store, campaign: str | None) -> dict[str, int | None]:
    query = (
        "SELECT attack, MAX(budget) FROM results"
        + (" WHERE campaign = ?" if campaign else "")
        + " GROUP BY attack"
    )
    rows = store.conn.execute(query, (campaign,) if campaign else ()).fetchall()
    return {row[0]: row[1] for row in rows}


def write_report(
    db: str | Path, out: str | Path, *, campaign: str | None = None, examples: int = 4
) -> dict[str, Path]:
    """Write ``report.md``, ``report.html`` (self-contained), the plots and ``rows.csv`` into ``out``.

    Args:
        db: the campaign database.
        out: output directory (created).
        campaign: report one campaign of the database (default: all).
        examples: at most this many example frame grids (needs ``--save-videos`` at run time).

    Returns:
        ``{"markdown": ..., "html": ..., "csv": ...}`` paths.
    """
    db = Path(db)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with Store(db, readonly=True) as store:
        rows = store.rows(campaign)
        names = [campaign] if campaign else store.campaigns()
        hashes = {row[0]: row[1] for row in store.conn.execute("SELECT name, config_hash FROM campaigns")}
        budgets = _budgets(store, campaign)
    if campaign is not None and not rows:
        raise ValueError(f"{db} holds no results of campaign {campaign!r}")
    summaries = summarize(rows)
    curves = _curves(rows, out, budgets)
    distortions = _distortion_curves(rows, out, budgets)
    grids = _examples(rows, db.parent, out, examples)
    csv_path = write_csv(rows, out / "rows.csv")

    datasets: dict[str, list[Summary]] = {}
    for summary in summaries:
        datasets.setdefault(summary.dataset, []).append(summary)
    errors = [row for row in rows if row["status"] == "error"]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    header = [
        f"Database `{db}`; {len(rows)} rows ({len(errors)} errors); "
        f"generated {stamp} by vidattack {__version__}.",
        "Campaigns: " + ", ".join(f"`{name}` (config {hashes.get(name, '?')})" for name in names) + ".",
    ]
    legend = (
        "n: attacked videos; SR: success rate (SR 8-bit: still adversarial once rounded to 8-bit frames; "
        "SR H.264: still adversarial after H.264 compression at crf 23, as a video platform re-encodes); "
        "ANQ / MQ: mean / median queries of successful attacks (black-box only); iters: mean iterations of "
        "successful attacks; MAP / MAP*: mean absolute perturbation (0-255) over all / perturbed pixels; "
        "frame S / pixel S: share of frames / pixels left unperturbed; thick. / rough.: thickness and "
        "roughness (% of range); perturbation metrics are means over successful attacks; sec: mean attack "
        "time; miscl.: clean video already misclassified (not attacked); failures: items that raised."
    )
    md = [f"# Campaign report: {', '.join(names) or '(empty)'}", "", *header, ""]
    body_html = [
        f"<h1>Campaign report: {html.escape(', '.join(names) or '(empty)')}</h1>",
        *(f"<p>{html.escape(line.replace('`', ''))}</p>" for line in header),
    ]
    for dataset, group in datasets.items():
        md += [f"## {dataset}", "", markdown_table(group), legend, ""]
        body_html += [
            f"<h2>{html.escape(dataset)}</h2>",
            _html_table(group),
            f"<p class='legend'>{html.escape(legend)}</p>",
        ]
        plots = [(title, path) for name, title, path in curves if name == dataset]
        if plots:
            md += ["### Success rate vs. budget", ""]
            body_html.append("<h3>Success rate vs. budget</h3>")
        for title, path in plots:
            md += [f"![{title}]({path.name})", ""]
            body_html.append(_img(path, title))
        shown = [entry for entry in distortions if entry[0] == dataset]
        if shown:
            md += ["### Distortion vs. budget (minimising methods)", "", DISTORTION_LEGEND, ""]
            body_html += ["<h3>Distortion vs. budget (minimising methods)</h3>",
                          f"<p class='legend'>{html.escape(DISTORTION_LEGEND)}</p>"]  # fmt: skip
        for _, model, table, plots in shown:
            md += [f"**{model}**", "", table, ""]
            body_html += [f"<h4>{html.escape(model)}</h4>", f"<pre>{html.escape(table)}</pre>"]
            for title, path in plots:
                md += [f"![{title}]({path.name})", ""]
                body_html.append(_img(path, title))
    if grids:
        md += ["## Examples", ""]
        body_html.append("<h2>Examples</h2>")
        for caption, path in grids:
            md += [f"![{caption}]({path.name})", ""]
            body_html.append(_img(path, caption))
    if errors:
        md += ["## Failures", "", "| model | method | video | error |", "|---|---|---:|---|"]
        body_html.append(
            "<h2>Failures</h2><table><tr><th>model</th><th>method</th><th>video</th><th>error</th></tr>"
        )
        for row in errors[:50]:
            md.append(
                f"| {row['model']} | {row['attack']} | {row['video']} | "
                f"{str(row['error']).replace('|', '/')} |"
            )
            body_html.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(row[k]))}</td>" for k in ("model", "attack", "video", "error")
                )
                + "</tr>"
            )
        body_html.append("</table>")
        md.append("")
    md_path = out / "report.md"
    md_path.write_text("\n".join(md), encoding="utf-8")
    html_path = out / "report.html"
    html_path.write_text(
        _HTML.format(title=html.escape(", ".join(names)), body="\n".join(body_html)), encoding="utf-8"
    )
    return {"markdown": md_path, "html": html_path, "csv": csv_path}


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vidattack campaign: {title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 80em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #eee; }} td:first-child, td:nth-child(2) {{ text-align: left; }}
.legend {{ font-size: 0.85em; color: #444; }} figure {{ margin: 1em 0; }} img {{ max-width: 100%; }}
</style></head><body>
{body}
</body></html>
"""
