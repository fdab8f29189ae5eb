"""Video Square Attack throughput: share of the wall time spent in the oracle's (batched) calls.

The method of ``bench_vbad_throughput.py``: one correctly classified test clip (the most confident, so
that the capped run does not end early), ``--rounds`` rounds (``max_rounds``), and for each number of
candidates per round:

* the raw batched forward throughput of the model at that batch (videos/s, ``torch.inference_mode``);
* the attack's queries/s and its ratio to the raw throughput;
* the time-share ratio, robust to other jobs on a shared machine: seconds inside ``oracle.query`` (the
  model's forward plus the oracle's validation, softmax and top-k) over the attack's wall time. Every
  query of this attack is sent in such a batched call, so no correction for one-query reads is needed;
* the attack's own time per round: wall time outside ``oracle.query`` over the rounds run (building the
  candidates, fitting the gradient estimate, bookkeeping).

    OMP_NUM_THREADS=1 python benchmarks/bench_vsquare_throughput.py [--model c3d-synth] [--rounds 200] \
        [--vsquare-params '{"moving": 0.0}']
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from vidattack import ScoreOracle
from vidattack import models as zoo
from vidattack.attacks.video_square import video_square
from vidattack.data.synthetic import SynthConfig, generate

sys.path.insert(0, str(Path(__file__).parent))
from bench_vbad_throughput import raw_throughput  # noqa: E402


class TimedOracle(ScoreOracle):
    """A ScoreOracle that accumulates the seconds spent answering queries."""

    seconds = 0.0

    def query(self, videos, *, owner=None):  # type: ignore[override]
        start = time.perf_counter()
        try:
            return super().query(videos, owner=owner)
        finally:
            self.seconds += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="c3d-synth")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--candidates", default="1,4,8")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--vsquare-params", default="{}", help='JSON keyword arguments, e.g. {"moving": 0.0}')
    args = parser.parse_args()
    params = json.loads(args.vsquare_params)
    torch.set_num_threads(args.threads)
    model = zoo.load(args.model).eval()
    clips = generate("test", SynthConfig(), indices=range(20))
    with torch.no_grad():
        probs = torch.softmax(model(clips.videos), 1)
    correct = (probs.argmax(1) == clips.labels).nonzero().flatten()
    index = int(correct[probs[correct, clips.labels[correct]].argmax()])
    video, label = clips.videos[index : index + 1], clips.labels[index : index + 1]
    print(f"model {args.model}, test clip {index}, {args.rounds} rounds, {args.threads} thread(s), {params}")
    print(
        "| candidates | raw forward (videos/s, batch B) | attack (queries/s) | ratio | ratio (time shares) "
        "| attack's own ms per round (outside the oracle) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for candidates in (int(c) for c in args.candidates.split(",")):
        raw = raw_throughput(model, video, candidates)
        oracle = TimedOracle(model, top_k=1, batch_size=max(candidates, 1))
        start = time.perf_counter()
        result = video_square(
            oracle, video, label, candidates=candidates, max_rounds=args.rounds,
            generator=torch.Generator().manual_seed(0), **params,
        )
        wall = time.perf_counter() - start
        qps = oracle.queries / wall
        own = (wall - oracle.seconds) / int(result.iterations[0]) * 1e3
        print(
            f"| {candidates} | {raw:.0f} | {qps:.0f} | {qps / raw:.2f} | {oracle.seconds / wall:.3f} | {own:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
