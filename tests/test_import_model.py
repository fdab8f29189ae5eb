"""`vidattack import-model`: foreign weights become a checkpoint with the model's class names."""

from __future__ import annotations

import pytest
import torch

from conftest import run_cli as run
from vidattack import models

ARCH_PARAMS = ["--arch-param", "num_classes=3", "--arch-param", "width=0.0625", "--arch-param", "fc_dim=16",
               "--arch-param", "fc_pool=[1,2,2]", "--arch-param", "num_frames=4", "--arch-param", "input_size=16"]  # fmt: skip


@pytest.fixture()
def foreign(tmp_path) -> tuple[torch.nn.Module, str]:
    """A small C3D's state dict saved as a plain ``.pt`` (as a user's training script would)."""
    net = models.build("c3d", num_classes=3, width=0.0625, fc_dim=16, fc_pool=(1, 2, 2), seed=1).eval()
    torch.save(net.state_dict(), tmp_path / "mine.pt")
    return net, str(tmp_path / "mine.pt")


def test_import_keeps_weights_shape_and_class_names(foreign, tmp_path, capsys):
    net, weights = foreign
    (tmp_path / "classInd.txt").write_text("3 Swim\n1 ApplyEyeMakeup\n2 Jump\n")  # UCF-101's form, any order
    out = tmp_path / "ckpt" / "mine"
    code, printed, _ = run(["import-model", weights, "--arch", "c3d", *ARCH_PARAMS,
                            "--class-names", str(tmp_path / "classInd.txt"), "--out", str(out)], capsys)  # fmt: skip
    assert code == 0 and "3 classes (named), 4 frames of (16, 16)" in printed
    loaded = models.load(out)  # a checkpoint every command takes, no --arch needed
    assert loaded.class_names == ["ApplyEyeMakeup", "Jump", "Swim"]
    assert (loaded.num_frames, tuple(loaded.input_size)) == (4, (16, 16))
    clip = torch.rand(2, 4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(clip), net(clip))
    # never overwrites
    code, _, error = run(["import-model", weights, "--arch", "c3d", *ARCH_PARAMS, "--out", str(out)], capsys)
    assert code == 2 and "exists" in error and "does not overwrite" in error


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ("a\nb\n", "num_classes=3 disagrees with 2 class_names"),
        ("a\nb\na\n", "names a class twice"),
        ("1 a\n2 b\n4 c\n", "not 0..K-1 or 1..K"),
    ],
)
def test_import_errors_name_the_problem(foreign, tmp_path, capsys, names, message):
    _, weights = foreign
    (tmp_path / "names.txt").write_text(names)
    code, _, error = run(["import-model", weights, "--arch", "c3d", *ARCH_PARAMS, "--class-names",
                          str(tmp_path / "names.txt"), "--out", str(tmp_path / "x")], capsys)  # fmt: skip
    assert code == 2 and message in error
    assert not list(tmp_path.glob("x.*"))  # nothing written


def test_import_refuses_weights_that_do_not_fit_and_missing_files(foreign, tmp_path, capsys):
    _, weights = foreign
    code, _, error = run(["import-model", weights, "--arch", "c3d", "--out", str(tmp_path / "y")], capsys)
    assert code == 2 and "do not fit the model" in error and not list(tmp_path.glob("y.*"))
    code, _, error = run(["import-model", str(tmp_path / "nope.pt"), "--arch", "c3d", "--out", str(tmp_path / "y")],
                         capsys)  # fmt: skip
    assert code == 2 and "no such file" in error
    # bare weights elsewhere point to this command
    with pytest.raises(ValueError, match="vidattack import-model"):
        models.load(weights)
