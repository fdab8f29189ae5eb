"""``vidattack train``, ``vidattack eval`` and ``vidattack models``: train, evaluate and list models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from vidattack.io import json_text

__all__ = ["register"]

_TRAIN_DATA_HELP = (
    "Data: `synth`, the synthetic motion test bed, or `scene`, the scene test bed (see --frames, --size, "
    "--clips). On `scene` image archs learn the clip's class from single frames."
)
_EVAL_DATA_HELP = (
    "Data: `synth` (the synthetic motion test bed) or `scene` (the scene test bed; clip length and frame "
    "size follow the model, or --frames/--size), or a data-set folder: UCF-101, HMDB-51 (split files, fold 1), "
    "Kinetics (annotations/*.csv) or class folders ROOT/SPLIT/CLASS, recognised, or named as `ucf101:ROOT`, "
    "`hmdb51:ROOT`, `kinetics:ROOT`, `folders:ROOT`; labels follow the model's class names where they match."
)


def register(app: typer.Typer) -> None:
    """Add the ``train``, ``eval``, ``models`` and ``import-model`` commands to ``app``."""
    app.command("train")(train_command)
    app.command("eval")(eval_command)
    app.command("models")(models_command)
    app.command("import-model")(import_model_command)


def _user_error(message: str) -> Exception:
    from vidattack.cli import UserError

    return UserError(message)


def parse_key_values(items: list[str], flag: str = "--param") -> dict[str, Any]:
    """``KEY=VALUE`` items, VALUE read as JSON (numbers, booleans, lists) or else as a bare string."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise _user_error(f"{flag} must look like KEY=VALUE, got {item!r}")
        try:
            params[key.replace("-", "_")] = json.loads(text)
        except json.JSONDecodeError:
            params[key.replace("-", "_")] = text  # a bare word such as head=gru
    return params


def _synth_data(
    spec: str,
    split: str,
    frames: int,
    size: int,
    image_task: bool,
    cache_dir: Path | None,
    clips: int | None,
    frame_labels: str = "appearance",
) -> tuple[Any, Any, tuple[str, ...]]:
    """``(inputs, labels, class_names)`` of a synthetic split: clips (motion) or all frames (labelled with
    the object, ``frame_labels="appearance"``, or with the clip's class, ``"class"``)."""
    from vidattack.data.synthetic import (
        APPEARANCE_CLASSES,
        DATA_NAMES,
        MOTION_CLASSES,
        SynthConfig,
        load_split,
    )
    from vidattack.models.train import video_frames

    if spec not in DATA_NAMES:
        raise _user_error(f"--data must be synth or scene here, got {spec!r}")
    sizes = {f"n_{name}": clips for name in ("train", "val", "test") if clips is not None}
    config = SynthConfig(frames=frames, size=size, bed=DATA_NAMES[spec], **sizes)
    split_clips = load_split(split, config, cache_dir=cache_dir)
    if image_task and frame_labels == "class":
        images, labels = video_frames(split_clips.videos, split_clips.labels)
        return images, labels, MOTION_CLASSES
    if image_task:
        images, labels = video_frames(split_clips.videos, split_clips.appearance)
        return images, labels, APPEARANCE_CLASSES
    return split_clips.videos, split_clips.labels, MOTION_CLASSES


def _folder_data(
    spec: str, split: str, frames: int, size: int, model_classes: list[str] | None
) -> tuple[Any, tuple[str, ...]]:
    """A stream of ``(video, label)`` from a data-set folder (``LAYOUT:ROOT`` or a folder, its layout
    recognised), labels in the model's class order when the class names match (:mod:`vidattack.data.layouts`)."""
    from vidattack.data.layouts import LAYOUTS, open_folder

    kind, _, rest = spec.partition(":")
    layout, root = (kind, rest) if kind in LAYOUTS and rest else (None, spec)
    if not Path(root).is_dir():
        raise _user_error(
            f"--data must be synth, scene, a data-set folder or LAYOUT:ROOT ({', '.join(LAYOUTS)}), got {spec!r}"
        )
    try:
        dataset = open_folder(root, split, frames=frames, size=(size, size), layout=layout,
                              model_classes=model_classes, on_error="skip")  # fmt: skip
    except (ValueError, FileNotFoundError) as error:
        raise _user_error(f"--data: {error}") from None
    return dataset.iter_valid(), tuple(dataset.class_names)


def train_command(
    arch: str = typer.Option(
        ..., "--arch", "-a", help="Architecture (registry name): c3d, i3d, lrcn, r2plus1d, image_small, ..."
    ),
    data: str = typer.Option("synth", "--data", "-d", help=_TRAIN_DATA_HELP),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Checkpoint stem: writes STEM.safetensors and STEM.json."
    ),
    frames: int = typer.Option(16, "--frames", help="Frames per clip of the synthetic data."),
    size: int = typer.Option(32, "--size", help="Frame height and width of the synthetic data."),
    epochs: int = typer.Option(10, "--epochs", help="Training epochs."),
    lr: float = typer.Option(2e-3, "--lr", help="Adam learning rate (cosine-annealed to 0)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Training batch size."),
    seed: int = typer.Option(
        0, "--seed", help="Seed of weight initialisation, shuffling, augmentation and dropout."
    ),
    width: float | None = typer.Option(
        None, "--width", help="Channel-width multiplier (archs that take `width`)."
    ),
    param: list[str] = typer.Option(
        [],
        "--param",
        "-p",
        help="Architecture keyword KEY=VALUE (JSON value), repeatable, e.g. -p fc_dim=256 -p head=gru.",
    ),
    clips: int | None = typer.Option(
        None,
        "--clips",
        help="Clips per split (train, val and test) of the synthetic data (default: 3000/500/500).",
    ),
    augment: bool = typer.Option(
        True, "--augment/--no-augment", help="Random shifts and brightness (never flips)."
    ),
    device: str = typer.Option("cpu", "--device", help="Torch device, e.g. cpu or cuda:0."),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Cache the rendered synthetic splits here."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print the training report as JSON."),
) -> None:
    """Train ARCH from scratch on the test bed and save it as a checkpoint (safetensors + JSON).

    Video archs learn the motion task on clips; image archs (image_small, resnet18, ...) learn the
    appearance task (which object) on single frames. The weights of the epoch with the best validation
    accuracy are kept; test and frame-shuffled test accuracy are recorded in STEM.json.
    """
    import torch

    from vidattack.data.synthetic import frame_shuffled
    from vidattack.models import checkpoint, registry
    from vidattack.models.train import evaluate, train, translate_augment

    if arch not in registry.ARCHS:
        raise _user_error(f"unknown arch {arch!r}; available: {', '.join(registry.ARCHS)}")
    image = registry.is_image_arch(arch)
    kwargs = parse_key_values(param)
    if width is not None:
        kwargs["width"] = width
    splits = {
        name: _synth_data(data, name, frames, size, image, cache_dir, clips,
                          frame_labels="class" if data == "scene" else "appearance")  # fmt: skip
        for name in ("train", "val", "test")
    }
    class_names = splits["train"][2]
    extra = {} if image else {"num_frames": frames}
    model = registry.build(
        arch, class_names=class_names, input_size=(size, size), seed=seed, **extra, **kwargs
    )
    report = train(
        model,
        splits["train"][:2],
        splits["val"][:2],
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        device=device,
        progress=progress,
        augment=translate_augment() if augment else None,
    )
    test_inputs, test_labels, _ = splits["test"]
    accuracy: dict[str, Any] = {
        "val": report.best_val_accuracy,
        "test": evaluate(model, (test_inputs, test_labels))["accuracy"],
    }
    if not image:
        shuffled = frame_shuffled(test_inputs, torch.Generator().manual_seed(seed))
        accuracy["test_shuffled"] = evaluate(model, (shuffled, test_labels))["accuracy"]
    metadata = {
        "task": "appearance" if image else "motion",
        "training": {
            "data": f"{data} (frames={frames}, size={size})",
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "seed": seed,
            "augment": augment,
            "best_epoch": report.best_epoch,
            "seconds": round(report.seconds, 1),
        },
        "accuracy": accuracy,
    }
    model.to("cpu")
    weights, doc = checkpoint.save(model, out, metadata)
    if as_json:
        typer.echo(
            json_text({"weights": str(weights), "json": str(doc), "accuracy": accuracy, **report.to_dict()})
        )
        return
    shuffled_text = f", shuffled test {accuracy['test_shuffled']:.3f}" if "test_shuffled" in accuracy else ""
    typer.echo(
        f"{arch}: val {accuracy['val']:.3f}, test {accuracy['test']:.3f}{shuffled_text} "
        f"({report.seconds:.0f}s) -> {weights}, {doc}"
    )


def eval_command(
    model: str = typer.Option(
        ..., "--model", "-m", help="Zoo name (see `vidattack models`) or checkpoint path."
    ),
    data: str = typer.Option("synth", "--data", "-d", help=_EVAL_DATA_HELP),
    split: str = typer.Option("test", "--split", help="Split to evaluate: train, val or test."),
    shuffle_frames: bool = typer.Option(
        False,
        "--shuffle-frames",
        help="Shuffle the frames of every clip (a model that uses motion drops to chance).",
    ),
    frames: int | None = typer.Option(None, "--frames", help="Clip length (default: the model's)."),
    size: int | None = typer.Option(None, "--size", help="Frame size (default: the model's)."),
    batch_size: int = typer.Option(64, "--batch-size", help="Inference batch size."),
    clips: int | None = typer.Option(
        None, "--clips", help="Synthetic data: evaluate the first N clips of the split (default: all)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the frame shuffling."),
    device: str = typer.Option("cpu", "--device", help="Torch device, e.g. cpu or cuda:0."),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Cache the rendered synthetic splits here."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Report a model's top-1 accuracy, overall and per class, on a data split.

    Video models are scored on clips (motion classes); image models on every frame of the clips
    (appearance classes).
    """
    import torch

    from vidattack import models
    from vidattack.data.synthetic import frame_shuffled
    from vidattack.models.image import ImageBackbone
    from vidattack.models.train import evaluate

    if split not in ("train", "val", "test"):
        raise _user_error(f"--split must be train, val or test, got {split!r}")
    net = models.load(model, device=device)
    image = isinstance(net, ImageBackbone)
    if shuffle_frames and image:
        raise _user_error("--shuffle-frames applies to video models only")
    input_size = net.input_size or (32, 32)
    frames = frames or getattr(net, "num_frames", None) or 16
    size = size or int(input_size[0])
    shuffler = torch.Generator().manual_seed(seed)
    from vidattack.data.synthetic import DATA_NAMES, MOTION_CLASSES

    if data in DATA_NAMES:
        # Image models trained on the clip's class (the scene backbones) are scored against it.
        frame_labels = "class" if tuple(net.class_names) == MOTION_CLASSES else "appearance"
        inputs, labels, class_names = _synth_data(
            data, split, frames, size, image, cache_dir, clips, frame_labels=frame_labels
        )
        if shuffle_frames:
            inputs = frame_shuffled(inputs, shuffler)
        samples: Any = (inputs, labels)
    else:
        if image:
            raise _user_error("image models are evaluated on --data synth or scene only")
        stream, class_names = _folder_data(data, split, frames, size, net.class_names)
        samples = ((frame_shuffled(v, shuffler) if shuffle_frames else v, y) for v, y in stream)
    result = evaluate(net, samples, batch_size=batch_size, class_names=class_names)
    record = {"model": model, "data": data, "split": split, "shuffle_frames": shuffle_frames, **result}
    if as_json:
        typer.echo(json_text(record))
        return
    typer.echo(
        f"{model} on {data}:{split}{' (frames shuffled)' if shuffle_frames else ''}: "
        f"accuracy {result['accuracy']:.4f} ({result['correct']}/{result['n']})"
    )
    width = max(len(name) for name in result["per_class"])
    for name, value in result["per_class"].items():
        typer.echo(f"  {name:<{width}}  {value:.3f}  (n={result['per_class_n'][name]})")


def models_command(
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List the models shipped with vidattack (usable as `--model NAME`)."""
    from vidattack.models import list_models

    rows = list_models()
    if as_json:
        typer.echo(json_text(rows))
        return
    if not rows:
        typer.echo("no models shipped (run scripts/build_zoo.py)")
        return

    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    header = ("name", "arch", "task", "classes", "input", "params", "test acc", "shuffled acc")
    table = [header] + [
        (
            row["name"],
            row["arch"],
            row["task"] or "-",
            str(len(row["classes"] or [])),
            "x".join(str(v) for v in row["input_shape"]),
            f"{row['num_parameters'] or 0:,}",
            fmt(row["test_accuracy"]),
            fmt(row["shuffled_test_accuracy"]),
        )  # fmt: skip
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def read_class_names(path: Path) -> list[str]:
    """Class names from a text file, one per line in output order; UCF-101's ``classInd.txt`` form
    (``1 ApplyEyeMakeup``, any order, 0- or 1-based) is put in index order. Blank lines are skipped."""
    if not path.is_file():
        raise _user_error(f"--class-names: no such file: '{path}'")
    lines = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    pairs = [line.split(maxsplit=1) for line in lines]
    if pairs and all(len(pair) == 2 and pair[0].isdigit() for pair in pairs):
        indexed = sorted((int(index), name.strip()) for index, name in pairs)
        first = indexed[0][0]
        if [index for index, _ in indexed] != list(range(first, first + len(indexed))) or first not in (0, 1):
            raise _user_error(f"--class-names: the indices in '{path}' are not 0..K-1 or 1..K")
        return [name for _, name in indexed]
    if len(set(lines)) != len(lines):
        raise _user_error(f"--class-names: '{path}' names a class twice")
    return lines


def import_model_command(
    weights: Path = typer.Argument(..., help="Foreign weights: a .pt / .pth / .bin / .ckpt state dict (read without "
                                   "executing code) or a bare .safetensors."),
    arch: str = typer.Option(..., "--arch", help="Architecture (registry name), e.g. r2plus1d_18, r3d_18, mc3_18, "
                             "s3d, mvit_v2_s, swin3d_t, c3d, i3d, lrcn."),
    arch_param: list[str] = typer.Option([], "--arch-param", help="Architecture argument KEY=VALUE (repeatable), "
                                         "e.g. num_classes=101, num_frames=16, input_size=112."),
    class_names: Path | None = typer.Option(None, "--class-names", help="Text file of class names, one per line in "
                                            "the model's output order (or UCF-101's classInd.txt): kept in the "
                                            "checkpoint, so data-set folders are labelled in the model's order."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint to write: OUT.safetensors + OUT.json."),
) -> None:
    """Turn foreign weights into a vidattack checkpoint that every command takes as `--model OUT`.

    `vidattack attack` reads foreign weights with `--arch`; `evaluate`, `eval`, `serve` and campaigns
    take checkpoints. The checkpoint records the architecture, clip shape and class names; the
    weights are checked to fit before anything is written, and existing files are never overwritten.
    """
    from vidattack import models

    arch_kwargs = parse_key_values(arch_param, "--arch-param")
    if class_names is not None:
        if "class_names" in arch_kwargs:
            raise _user_error("give the class names once: --class-names or --arch-param class_names=...")
        arch_kwargs["class_names"] = read_class_names(class_names)
    stem = out.with_suffix("") if out.suffix in (".json", ".safetensors") else out
    existing = [path for path in (stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".safetensors"))
                if path.exists()]  # fmt: skip
    if existing:
        raise _user_error(f"--out: '{existing[0]}' exists; vidattack does not overwrite a checkpoint")
    if not weights.is_file():
        raise _user_error(f"WEIGHTS: no such file: '{weights}'")
    try:
        net = models.load(weights, arch=arch, arch_kwargs=arch_kwargs)
    except (ValueError, TypeError) as error:
        raise _user_error(str(error)) from None
    weights_path, json_path = models.save(net, stem, metadata={"imported_from": weights.name})
    names = getattr(net, "class_names", None)
    shape = f"{getattr(net, 'num_frames', '?')} frames of {getattr(net, 'input_size', '?')}"
    typer.echo(f"wrote {json_path} and {weights_path}: {arch}, {net.num_classes} classes "
               f"({'named' if names else 'unnamed'}), {shape}")  # fmt: skip
