"""The GPU benchmark script runs end to end in its tiny CPU configuration and writes its tables."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_tiny_configuration_writes_its_tables(tmp_path):
    out = tmp_path / "gpu"
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh"), str(out), "--tiny"],
        capture_output=True, text=True, timeout=180, check=False,
        env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHON": __import__("sys").executable},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "results.json").read_text())
    rows = report["forward"]["r3d_18"]["rows"]
    assert [r["batch"] for r in rows] == [1, 2]
    assert all(r["videos_per_s"] > 0 for r in rows)
    attacks = {r["method"]: r for r in report["attacks"]["rows"]}
    assert set(attacks) == {"vbad", "opt"}
    for row in attacks.values():
        assert "skipped" not in row, row
        assert row["seq_qps"] > 0 and row["batched_qps"] > 0
    table = (out / "results.md").read_text()
    assert "| r3d_18 |" in table and "| vbad |" in table
