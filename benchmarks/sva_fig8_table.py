"""SVA paper Fig. 8 (SVA_opt vs H_opt) from a `configs/sva_fig8.toml` campaign database: the summary table
(FR, Q, MAP, S per method, Sec. 4.2) and the per-clip numbers, as Markdown.

    python benchmarks/sva_fig8_table.py --db svaopt.sqlite

FR: share of clips with success (misclassified, whole-video MAP <= 12.75); Q: mean queries of the
successes (to convergence or the budget: the papers' rule) and, separately, the mean queries at the first
traced point within the success bound and at the first traced point with MAP <= --level (default 3, the
Heuristic paper's omega; over the clips that reach it); MAP (0-255) and S (share of frames left clean, Eq. 13): means over
the successes.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from statistics import mean


def _first_hit(trace_text: str | None) -> int | None:
    """Queries at the first traced point that met the success bound (``None``: never)."""
    for queries, _value, hit in json.loads(trace_text or "[]"):
        if hit:
            return int(queries)
    return None


def _first_below(trace_text: str | None, level: float) -> int | None:
    """Queries at the first traced point with MAP <= ``level`` (``None``: never)."""
    for queries, value, _hit in json.loads(trace_text or "[]"):
        if value <= level:
            return int(queries)
    return None


def _fmt(values: list[float], spec: str) -> str:
    return format(mean(values), spec) if values else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--campaign", default="sva-fig8")
    parser.add_argument(
        "--level", type=float, default=3.0, help="MAP (0-255) for the queries-to-level column"
    )
    args = parser.parse_args()
    conn = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT attack, video, status, success, queries, map, frame_sparsity, trace, record, seconds "
        "FROM results WHERE campaign = ? ORDER BY attack DESC, video",
        (args.campaign,),
    ).fetchall()
    by_attack: dict[str, list[tuple]] = {}
    for row in rows:
        by_attack.setdefault(row[0], []).append(row)
    level = f"{args.level:g}"
    print(
        f"| method | clips | FR | Q (to convergence / budget) | Q (first success) | Q (MAP <= {level}) | MAP | S |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for attack, items in by_attack.items():
        done = [r for r in items if r[2] != "error"]
        won = [r for r in done if r[3]]
        firsts = [q for q in (_first_hit(r[7]) for r in won) if q is not None]
        belows = [q for q in (_first_below(r[7], args.level) for r in won) if q is not None]
        print(
            f"| {attack} | {len(done)} | {100 * len(won) / max(1, len(done)):.0f}% | "
            f"{_fmt([r[4] for r in won], ',.0f')} | {_fmt(firsts, ',.0f')} | "
            f"{_fmt(belows, ',.0f')} ({len(belows)}/{len(won)}) | {_fmt([r[5] for r in won], '.3f')} | "
            f"{_fmt([100 * r[6] for r in won], '.1f')}% |"
        )
    print()
    print(
        f"| method | video | success | queries | first success at | MAP <= {level} at | MAP | key frames | S | stop |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for attack, items in by_attack.items():
        for _, video, status, success, queries, value, sparsity, trace, record, _seconds in items:
            extras = json.loads(record or "{}").get("extras", {})
            # perturbed frames, from S and the config's 16 frames
            frames = "-" if sparsity is None else f"{round(16 * (1 - sparsity))}"
            print(
                f"| {attack} | {video} | {'yes' if success else 'no' if status != 'error' else 'error'} | "
                f"{queries} | {_first_hit(trace) or '-'} | {_first_below(trace, args.level) or '-'} | {'-' if value is None else f'{value:.3f}'} | {frames} | "
                f"{'-' if sparsity is None else f'{100 * sparsity:.1f}%'} | {extras.get('stop_reason', status)} |"
            )


if __name__ == "__main__":
    main()
