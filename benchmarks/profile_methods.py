"""Where a black-box attack's time goes outside the model: cProfile of one run per method.

The model's forward passes are wrapped in one function (``model_forward``) so everything else shows up
as the attack's own work; prints, per method, the model share and the top functions by their own
time (``tottime``) and by cumulative time outside the model.

    OMP_NUM_THREADS=1 python benchmarks/profile_methods.py [--model c3d-synth] [--methods vbad,sva]
        [--budget 1000] [--top 12]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

import torch
from bench_throughput import METHODS, QUICK_PARAMS, correct_clips  # noqa: I001 - sibling script
from torch import Tensor, nn

from vidattack import methods
from vidattack import models as zoo
from vidattack.methods import SyntheticAttackerData


def run_method(*args, **kwargs):
    """``methods.run`` with the zoo's attacker data (the test bed's training split)."""
    return methods.run(*args, attacker_data=SyntheticAttackerData(), **kwargs)



class Profiled(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, videos: Tensor) -> Tensor:
        return model_forward(self.model, videos)


def model_forward(model: nn.Module, videos: Tensor) -> Tensor:
    return model(videos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="c3d-synth")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--budget", type=int, default=1000)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    model = zoo.load(args.model).eval()
    videos, labels = correct_clips(model, 1)
    wrapped = Profiled(model).eval()
    for method in args.methods.split(","):
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        result = run_method(method, wrapped, videos, labels, budget=args.budget, seed=0,
                              params=QUICK_PARAMS.get(method))
        profiler.disable()
        wall = time.perf_counter() - start
        stats = pstats.Stats(profiler)
        model_seconds = next(
            (v[3] for k, v in stats.stats.items() if k[2] == "model_forward"), 0.0  # type: ignore[attr-defined]
        )
        print(f"\n## {method} on {args.model}: {int(result.queries.sum())} queries, {wall:.1f} s, "
              f"model {100 * model_seconds / wall:.0f}% (profiled; cProfile slows Python code)\n")
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(args.top)
        print("\n".join(line for line in buffer.getvalue().splitlines() if line.strip())[-4000:])


if __name__ == "__main__":
    torch.set_num_threads(torch.get_num_threads())
    main()
