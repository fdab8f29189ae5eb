"""Probe (issue 18): does a boundary-gradient estimate give Video RayS better rays after its start?

Not an attack of the library: a measured negative result kept so that its numbers can be reproduced.
Per clip (``bench_labels_peers.py``'s clips, untargeted): ``video_rays`` (minimising, seed 0) spends the
first ``b1`` queries; then, until ``total``, each round estimates the decision boundary's normal at
the current boundary point ``x + r d`` in a block subspace (HopSkipJump's Monte-Carlo sign estimate,
Chen et al. 2020: ``b`` Rademacher probes of radius ``delta r``, one batched call), accumulates the
estimates, and proposes the ray ``d' = sign(G / mean|G| + mix d)`` (``mix`` 0: the estimate's sign
alone; larger: flip only where the estimate is strong). In the linear view the boundary is hit first
by the sign vector of its normal. A proposal is checked at 4 radii below ``r`` in one call and, if
adversarial there, its radius is searched in two calls of 16 radii. Printed: per clip the best
adversarial L-inf at ``b1`` and ``total`` queries, and the median.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probe_vrays_gradient_rays.py c3d-synth val '{"mix": 1.0}'

Keys of the JSON settings: b1 (1000), total (5000), sub (block sizes t, c, h, w; [16, 1, 2, 2]),
b (32), delta (0.02), mix (0.0), clips (all).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_labels_peers import Recorder, chosen_clips  # noqa: E402
from linf_whitebox_floor import expand  # noqa: E402


def probe_clip(net: torch.nn.Module, x: Tensor, y: int, settings: dict) -> tuple[float, float]:
    """Best adversarial L-inf within ``b1`` and within ``total`` queries for one clip ``[T,C,H,W]``."""
    from vidattack.attacks.video_rays import video_rays
    from vidattack.threat import LabelOracle

    b1, total = settings.get("b1", 1000), settings.get("total", 5000)
    blocks = tuple(settings.get("sub", [16, 1, 2, 2]))
    rows, delta, mix = settings.get("b", 32), settings.get("delta", 0.02), settings.get("mix", 0.0)
    low = tuple(s // b for s, b in zip(x.shape, blocks, strict=True))
    recorder = Recorder(net, x, y)
    generator = torch.Generator().manual_seed(0)
    start = video_rays(LabelOracle(recorder, budget=b1, batch_size=64), x.unsqueeze(0), torch.tensor([y]),
                       form="minimising", generator=torch.Generator().manual_seed(0))

    def ask(batch: Tensor) -> Tensor | None:
        batch = batch[: max(0, total - recorder.count)]
        return None if batch.shape[0] == 0 else recorder(batch.clamp(0, 1)).argmax(1) != y

    def up(z: Tensor) -> Tensor:
        return expand(z.unsqueeze(0), blocks)[0]  # type: ignore[arg-type]

    point = start.adversarial[0]
    with torch.no_grad():
        if int(net(point.unsqueeze(0)).argmax(1)) == y:  # no adversarial start within b1
            return recorder.at(b1)[0], recorder.at(total)[0]
    direction, radius = (point - x).sign(), float((point - x).abs().max())
    accumulated = torch.zeros(low)
    while total - recorder.count > 0:
        probes = torch.randint(0, 2, (rows, *low), generator=generator).float() * 2 - 1
        answers = ask(x + radius * direction + delta * radius * expand(probes, blocks))  # type: ignore[arg-type]
        if answers is None:
            break
        signs = answers.float() * 2 - 1
        if float(signs.mean().abs()) == 1.0:  # every probe on one side: no information on the normal
            continue
        accumulated += ((signs - signs.mean()).reshape(-1, 1, 1, 1, 1) * probes[: signs.shape[0]]).mean(0)
        proposal = up(accumulated / accumulated.abs().mean().clamp(min=1e-12)) + mix * direction
        proposal = torch.where(proposal >= 0, 1.0, -1.0)
        factors = torch.tensor([0.999, 0.98, 0.95, 0.9])
        ok = ask(x + (radius * factors).reshape(-1, 1, 1, 1, 1) * proposal)
        if ok is None:
            break
        if not bool(ok[0]):
            continue
        high = radius * float(factors[int(ok.nonzero().max())])
        low_radius = 0.0
        for _ in range(2):
            radii = torch.linspace(low_radius, high, 17)[:-1]
            hits = ask(x + radii.reshape(-1, 1, 1, 1, 1) * proposal)
            if hits is None:
                break
            if not bool(hits.any()):
                low_radius = float(radii[-1])
                continue
            j = int(hits.nonzero()[0])
            high, low_radius = float(radii[j]), float(radii[j - 1]) if j > 0 else 0.0
        if high < radius:
            direction, radius = proposal, high
    return recorder.at(b1)[0], recorder.at(total)[0]


def main() -> None:
    from vidattack import models

    model_name, split = sys.argv[1], sys.argv[2]
    settings = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    torch.set_num_threads(1)
    net = models.load(model_name).eval()
    videos, labels, order = chosen_clips(net, split)
    count = settings.get("clips", len(order))
    results = []
    for k in range(count):
        at_start, at_total = probe_clip(net, videos[k], int(labels[k]), settings)
        results.append(at_total)
        print(f"clip {order[k]}: L-inf {at_start:.4f} at b1, {at_total:.4f} at total", flush=True)
    print(f"{model_name} {split} {settings}: median {statistics.median(results):.4f}, "
          f"within 0.05: {sum(r <= 0.05 for r in results)}/{count}")


if __name__ == "__main__":
    main()
