"""The Markdown and HTML reports of ``vidattack evaluate`` (:mod:`vidattack.evaluation.robustness`), with
their plots: robust accuracy after each suite member, and clips broken against queries (black-box)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

__all__ = ["write_reports"]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _plots(document: dict[str, Any], out: Path) -> list[tuple[str, Path]]:
    """``[(caption, png)]``: robust accuracy after each member; clips broken vs. queries (black-box)."""
    from vidattack import viz

    plt = viz.plt  # pyplot under viz's headless (Agg) backend

    plots: list[tuple[str, Path]] = []
    members = document["members"]
    figure, axis = plt.subplots(figsize=(6.5, 3.8))
    names = ["clean"] + [m["member"] for m in members]
    heights = [document["clean_acc"]] + [m["robust_acc_after"] for m in members]
    bars = axis.bar(range(len(names)), heights, color=["tab:gray"] + ["tab:blue"] * len(members),
                    label="clean accuracy, then robust accuracy after each member")  # fmt: skip
    axis.bar_label(bars, [_pct(h) for h in heights], fontsize=7)
    for key, label in (("robust_acc_uint8", "8-bit"), ("robust_acc_h264", "H.264")):
        axis.axhline(document[key], ls="--", lw=1, color="tab:orange" if label == "8-bit" else "tab:green",
                     label=f"suite, {label}: {_pct(document[key])}")  # fmt: skip
    axis.set_xticks(range(len(names)), names, rotation=20, fontsize=8)
    axis.set_ylim(0, 1.15)
    axis.set_ylabel("accuracy")
    axis.set_title(f"Robust accuracy after each member ({document['threat']}, eps={document['eps']})")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    path = out / "robust_by_member.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    plots.append(("Robust accuracy after each member of the suite (worst case so far)", path))
    if document["budget"] is not None:
        curves = {}
        for kind, suffix in (("H.264", "h264"), ("8-bit", "uint8"), ("float", "")):  # float drawn on top
            traces = []
            for sample in document["samples"]:
                broken = sample["broken_by"] is not None if not suffix else sample[f"broken_{suffix}"]
                queries = sample["queries"] if not suffix else sample[f"queries_{suffix}"]
                traces.append([(int(queries or 0), 0.0, True)] if broken else [])
            curves[f"suite, {kind}"] = traces
        total = max([document["budget"]] + [int(s["queries"] or 0) for s in document["samples"]])
        path = viz.success_vs_queries(curves, out / "broken_vs_queries.png", max_queries=total,
                                      title="Clips broken (1 - robust accuracy) vs. queries")  # fmt: skip
        plots.append(("Share of clips broken within a query count (cumulative over the suite's members)", path))
    return plots


def _tables(document: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """``[(title, header, rows)]`` shared by the Markdown and HTML reports."""
    summary = [["clean accuracy", _pct(document["clean_acc"])], ["robust accuracy", _pct(document["robust_acc"])],
               ["robust accuracy, 8-bit", _pct(document["robust_acc_uint8"])],
               ["robust accuracy, H.264 (crf 23)", _pct(document["robust_acc_h264"])]]  # fmt: skip
    members = [[m["member"], str(m["attacked"]), str(m["broken_first"]), _pct(m["success_rate"]),
                _pct(m["robust_acc_after"]), _pct(m["robust_acc_alone"]),
                "–" if m["mean_queries_success"] is None else f"{m['mean_queries_success']:.0f}"]
               for m in document["members"]]  # fmt: skip
    tables = [("Summary", ["figure", "value"], summary),
              ("Members (in order)", ["member", "attacked", "broke first", "success rate", "robust after",
                                      "robust alone", "mean queries (success)"], members)]  # fmt: skip
    if document["budgets"]:
        tables.append(("Robust accuracy at query budgets", ["queries", "robust", "8-bit", "H.264"],
                       [[f"{b['queries']:,}", _pct(b["robust_acc"]), _pct(b["robust_acc_uint8"]),
                         _pct(b["robust_acc_h264"])] for b in document["budgets"]]))  # fmt: skip
    rows = []
    for s in document["samples"]:
        dist = s.get("distortion") or {}
        rows.append([str(s["clip"]), str(s["label"]), str(s["prediction"]), s["broken_by"] or "robust",
                     "–" if s["queries"] is None else str(s["queries"]),
                     "–" if dist.get("linf") is None else f"{dist['linf']:.4f}",
                     "–" if dist.get("map") is None else f"{dist['map']:.2f}"])  # fmt: skip
    tables.append(("Clips", ["clip", "label", "prediction", "broken by", "queries", "L-inf", "MAP"], rows))
    return tables


def _header_lines(document: dict[str, Any]) -> list[str]:
    budget = "white-box (no queries)" if document["budget"] is None else f"{document['budget']:,} queries per member per clip"
    return [
        f"Model `{document['model']['name']}` (weights {document['model']['fingerprint']}), data "
        f"`{document['data']['name']}` (labels: {document['data'].get('labels', 'as given')}), n = {document['n']}, "
        f"threat {document['threat']}, L-inf eps = "
        f"{document['eps']}, budget: {budget}.",
        f"Suite {document['suite']['name']} v{document['suite']['version']} (members in order: "
        + ", ".join(m["label"] for m in document["suite"]["members"])
        + "); a clip is robust only if every member failed; a success counts only within eps (L-inf).",
        f"vidattack {document['vidattack_version']}, seed {document['seed']}, attacker data "
        f"{document['attacker_data']}, wall time of this run {document['wall_seconds']:.1f} s (attacks, over all "
        f"runs of this evaluation: {document['attack_seconds']:.1f} s)"
        + ("" if document["complete"] else "; INCOMPLETE: clips held by another runner") + ".",
    ]


def write_reports(document: dict[str, Any], out: str | Path) -> dict[str, Path]:
    """Write ``report.md`` and ``report.html`` (self-contained) with the plots into ``out``."""
    out = Path(out)
    plots = _plots(document, out)
    title = f"Robustness of {document['model']['name']} ({document['threat']})"
    md = [f"# {title}", "", *_header_lines(document), ""]
    body = [f"<h1>{html.escape(title)}</h1>", *(f"<p>{html.escape(line.replace('`', ''))}</p>"
                                              for line in _header_lines(document))]  # fmt: skip
    tables = _tables(document)
    for position, (name, header, rows) in enumerate(tables):
        if position == len(tables) - 1:  # plots before the per-clip table
            for caption, path in plots:
                md += [f"![{caption}]({path.name})", ""]
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                body.append(f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                            f"<figcaption>{html.escape(caption)}</figcaption></figure>")  # fmt: skip
        md += [f"## {name}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        md += ["| " + " | ".join(row) + " |" for row in rows] + [""]
        body.append(f"<h2>{html.escape(name)}</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header)
                    + "</tr>" + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                                        for row in rows) + "</table>")  # fmt: skip
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text("\n".join(md), encoding="utf-8")
    html_path.write_text(_HTML.format(title=html.escape(title), body="\n".join(body)), encoding="utf-8")
    return {"markdown": md_path, "html": html_path}


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vidattack evaluate: {title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 70em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #eee; }} td:first-child {{ text-align: left; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; }}
</style></head><body>
{body}
</body></html>
"""
