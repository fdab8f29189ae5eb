"""Checkpoints (safetensors + JSON), foreign weights without code execution, and the zoo."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from vidattack import models
from vidattack.models import checkpoint

K = 4
NAMES = ["a", "b", "c", "d"]


def _tiny_lrcn(seed: int = 0) -> models.VideoClassifier:
    return models.build(
        "lrcn",
        class_names=NAMES,
        num_frames=8,
        input_size=(32, 32),
        width=0.25,
        feature_dim=16,
        hidden_size=8,
        dropout=0.5,
        seed=seed,
    )


def _perturb_batch_norm(model: torch.nn.Module) -> None:
    """Give BatchNorm running statistics non-default values so a round trip that lost them would show."""
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if "running_mean" in name:
                buffer.add_(0.3)


def test_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    model = _tiny_lrcn()
    _perturb_batch_norm(model)
    model.eval()
    weights, doc = models.save(model, tmp_path / "net", {"task": "motion", "accuracy": {"test": 0.5}})
    assert weights.name == "net.safetensors" and doc.name == "net.json"
    meta = json.loads(doc.read_text())
    assert meta["arch"] == "lrcn" and meta["class_names"] == NAMES
    assert meta["input"] == {"layout": "ntchw", "net_layout": "ntchw", "frames": 8, "height": 32, "width": 32,
                             "range": [0.0, 1.0]}  # fmt: skip
    assert meta["arch_kwargs"]["hidden_size"] == 8 and meta["accuracy"]["test"] == 0.5
    assert "vidattack_version" in meta and meta["num_parameters"] > 0

    videos = torch.rand(3, 8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for path in (tmp_path / "net", doc, weights):
        loaded = models.load(path)
        assert not loaded.training
        assert loaded.num_frames == 8 and loaded.input_size == (32, 32) and loaded.class_names == NAMES
        with torch.no_grad():
            torch.testing.assert_close(loaded(videos), model(videos), rtol=0, atol=0)
            torch.testing.assert_close(
                loaded.frame_logits(videos), model.frame_logits(videos), rtol=0, atol=0
            )


def test_lone_safetensors_carries_its_metadata(tmp_path: Path) -> None:
    model = models.build("image_small", class_names=NAMES, channels=[4, 8], seed=0).eval()
    weights, doc = models.save(model, tmp_path / "img")
    doc.unlink()
    loaded = models.load(weights)
    images = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), model(images), rtol=0, atol=0)


def test_save_rejects_metadata_overriding_model_fields(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="arch"):
        models.save(_tiny_lrcn(), tmp_path / "x", {"arch": "c3d"})


def test_foreign_state_dict_with_arch(tmp_path: Path) -> None:
    """A torchvision-style .pth (keys of the bare network) loads with arch + kwargs."""
    from torchvision.models.video import r3d_18

    reference = r3d_18(weights=None, num_classes=K).eval()
    torch.save({"state_dict": reference.state_dict()}, tmp_path / "r3d.pth")
    loaded = models.load_checkpoint(tmp_path / "r3d.pth", arch="r3d_18", arch_kwargs={"num_classes": K})
    clip = torch.rand(1, 4, 3, 32, 32)
    with torch.no_grad():
        expected = reference(loaded.prepare(clip))
        torch.testing.assert_close(loaded(clip), expected)
    with pytest.raises(ValueError, match="pass the architecture"):
        models.load_checkpoint(tmp_path / "r3d.pth")
    with pytest.raises(ValueError, match="other shapes.*num_classes"):
        models.load_checkpoint(tmp_path / "r3d.pth", arch="r3d_18", arch_kwargs={"num_classes": 7})


def test_weights_path_of_torchvision_builders(tmp_path: Path) -> None:
    from safetensors.torch import save_file
    from torchvision.models import resnet18

    reference = resnet18(weights=None, num_classes=K).eval()
    save_file(reference.state_dict(), str(tmp_path / "r18.safetensors"))
    model = models.build("resnet18", num_classes=K, weights_path=str(tmp_path / "r18.safetensors")).eval()
    assert "weights_path" not in model.arch_kwargs  # a file is not part of the architecture
    images = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(images), reference(model.prepare(images)))


class _Payload:
    """Unpickling this would create the marker file (a stand-in for arbitrary code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.marker,))


# torch warns that a plain pickle uses a newer protocol than its own files; irrelevant here.
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_malicious_pickle_does_not_execute(tmp_path: Path, writer: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"weight": torch.zeros(2), "evil": _Payload(marker)}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as handle:
            pickle.dump(payload, handle)
    assert not marker.exists()
    with pytest.raises(models.UnsafeCheckpointError, match="refusing to load"):
        models.load_checkpoint(path, arch="image_small")
    with pytest.raises(ValueError, match="could execute code"):
        checkpoint.load_state_dict_file(path)
    assert not marker.exists()


def test_missing_and_wrong_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no checkpoint"):
        models.load_checkpoint(tmp_path / "absent")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something-else"}))
    (tmp_path / "other.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="not a vidattack model checkpoint"):
        models.load_checkpoint(tmp_path / "other.json")


def test_zoo_unknown_name_lists_available() -> None:
    with pytest.raises(ValueError, match="unknown model 'no-such-model'.*available") as info:
        models.load("no-such-model")
    for name in models.zoo.model_names():
        assert name in str(info.value)


SHIPPED = [
    "c3d-synth",
    "i3d-synth",
    "lrcn-synth",
    "cnnrnn-rnn-synth",
    "cnnrnn-gru-synth",
    "cnnrnn-pool-synth",
    "r2plus1d-synth",
    "image-small-synth",
    "image-small2-synth",
    "image-small3-synth",
]


def test_list_models_lists_shipped_models() -> None:
    rows = {row["name"]: row for row in models.list_models()}
    missing = [name for name in SHIPPED if name not in rows]
    assert not missing, f"zoo lacks {missing} (run scripts/build_zoo.py)"
    for name in SHIPPED:
        row = rows[name]
        assert row["arch"] and row["classes"] and row["test_accuracy"] is not None
        if row["kind"] == "video":
            assert row["input_shape"] == [16, 3, 32, 32] and len(row["classes"]) == 10
            assert row["shuffled_test_accuracy"] is not None
        else:
            assert row["input_shape"] == [3, 32, 32]
