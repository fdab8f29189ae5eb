#!/usr/bin/env bash
# GPU benchmark of issue 21: forward throughput of full-size video architectures (batch 1-256) and
# black-box attack throughput with and without the batching executor. Writes results.md/results.json.
#
#   benchmarks/gpu.sh OUT_DIR [extra bench_gpu.py options]      # on a CUDA machine, < 8 min
#   benchmarks/gpu.sh OUT_DIR --tiny                            # CPU smoke test (~30 s)
#
# PYTHON selects the interpreter (default: the repository's .venv if present, else python3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:?usage: benchmarks/gpu.sh OUT_DIR [options]}"
shift
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$here/.venv/bin/python" ]]; then PYTHON="$here/.venv/bin/python"; else PYTHON=python3; fi
fi
export PYTHONPATH="$here/src${PYTHONPATH:+:$PYTHONPATH}"
# The whole run is time-boxed twice: the script stops starting measurements after --time-limit
# (420 s by default) and `timeout` kills it at 470 s, inside the 8-minute device budget.
exec timeout 470 "$PYTHON" "$here/benchmarks/bench_gpu.py" --out "$out" "$@"
