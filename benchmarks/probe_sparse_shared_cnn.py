"""Does a shared per-frame CNN make the sparse l2,1 perturbation transfer? (Sparse paper, Table 3)

Wei et al. 2019 (Table 3) transfer their perturbations between Vanilla RNN, LSTM, GRU and pooling heads at
66.7-97.1%; their four models share one ImageNet CNN. The zoo's CNN+RNN models were trained from scratch
separately, and between them the transfer is 0-38% (benchmarks/results_sparse.md). This probe isolates the
shared CNN: it takes `cnnrnn-gru-synth`, freezes its per-frame CNN, and trains a vanilla RNN head and an
LSTM head on top of it (the zoo's recipe: Adam lr 2e-3, batches of 16, cosine schedule, the motion task's
training split, best validation epoch kept; only the head learns). Then it attacks each of the three
shared-CNN models (`sparse_l21`, all frames, lambda 0.01 as Table 3's "table to read", 300 steps) and
evaluates the adversarial clips on all of them and on the separately trained `cnnrnn-rnn-synth` and
`lrcn-synth`, in one run on the same clips (the first test clip of each class that all five classify
correctly).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probe_sparse_shared_cnn.py
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch
from torch import nn

from vidattack import models
from vidattack.attacks.sparse_l21 import sparse_l21
from vidattack.data.synthetic import load_split
from vidattack.models import evaluate, train
from vidattack.threat import WhiteBox

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sparse import one_per_class  # noqa: E402  (the clip selection of the Table 3 runs)


def head_on_shared_cnn(base: nn.Module, head: str, hidden: int = 128) -> nn.Module:
    """A copy of the CNN+RNN ``base`` (a zoo VideoClassifier) with a new ``head`` and a frozen CNN."""
    model = copy.deepcopy(base)
    net = model.net
    torch.manual_seed(0)  # the new head's initial weights
    features = net.classifier.in_features if net.rnn is None else net.rnn.input_size
    net.rnn = {"rnn": nn.RNN, "lstm": nn.LSTM}[head](features, hidden, batch_first=True)
    net.head, net.classifier = head, nn.Linear(hidden, net.classifier.out_features)
    for parameter in net.cnn.parameters():
        parameter.requires_grad_(False)
    # Keep the CNN's BatchNorm layers in eval mode while the head trains, so that the CNN computes
    # exactly what it computes in the base model (train() would switch them to batch statistics).
    net.cnn.eval()
    net.cnn.train = lambda mode=True: net.cnn  # type: ignore[method-assign]
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="cnnrnn-gru-synth", help="zoo CNN+RNN whose CNN is shared")
    parser.add_argument("--epochs", type=int, default=20, help="head training epochs (the zoo's: 20)")
    parser.add_argument("--lam", type=float, default=0.01)
    parser.add_argument("--pool", type=int, default=400, help="test clips searched for one per class")
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = models.load(args.base).eval()
    train_split, val_split = load_split("train"), load_split("val")
    test_split = load_split("test")
    shared = {f"shared {args.base.split('-')[1].upper()}": base}
    for head in ("rnn", "lstm"):
        model = head_on_shared_cnn(base, head)
        report = train(
            model,
            train_split,
            val_split,
            epochs=args.epochs,
            lr=2e-3,
            batch_size=16,
            seed=0,
            progress=False,
            grad_clip=1.0 if head == "rnn" else None,
        )
        shared[f"shared {head.upper()}"] = model.eval()
        print(
            f"trained shared-CNN {head}: best val {report.best_val_accuracy:.3f} at epoch {report.best_epoch}, "
            f"{report.seconds:.0f} s",
            flush=True,
        )
    separate = {
        "separate RNN (cnnrnn-rnn-synth)": models.load("cnnrnn-rnn-synth").eval(),
        "separate LSTM (lrcn-synth)": models.load("lrcn-synth").eval(),
    }
    everyone = {**shared, **separate}
    for name, model in everyone.items():
        print(f"  {name}: test accuracy {evaluate(model, test_split)['accuracy']:.3f}")

    videos, labels, index = one_per_class(list(everyone.values()), limit=args.pool)
    print(f"clips (first correct for all five, per class): {sorted(index)}")
    names = list(everyone)
    print("\n| source (attacked, white-box) \\ evaluated on | " + " | ".join(names) + " | MAP (0-255) |")
    print("|---|" + "---|" * (len(names) + 1))
    for source, model in shared.items():
        result = sparse_l21(
            WhiteBox(model),
            videos,
            labels,
            lam=args.lam,
            steps=300,
            generator=torch.Generator().manual_seed(0),
        )
        cells = []
        for other in everyone.values():
            with torch.no_grad():
                fooled = (other(result.adversarial).argmax(1) != labels).float().mean()
            cells.append(f"{float(fooled):.0%}")
        map_255 = float((result.adversarial - videos).abs().mean() * 255)
        print(f"| {source} | " + " | ".join(cells) + f" | {map_255:.3f} |", flush=True)


if __name__ == "__main__":
    main()
