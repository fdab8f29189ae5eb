"""Video and tensor I/O: bit-exact lossless round trips, previews, npz, errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidattack.data.references import load_video_any
from vidattack.data.synthetic import SynthConfig, generate
from vidattack.io import (
    decode_video,
    h264_round_trip,
    load_npz,
    read_video,
    save_npz,
    write_lossless,
    write_preview,
    write_video,
)
from vidattack.video import to_float, to_uint8


def random_video(frames=5, height=17, width=23, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return to_float(torch.randint(0, 256, (frames, 3, height, width), generator=generator, dtype=torch.uint8))


@pytest.mark.parametrize("suffix", [".mkv", ".avi"])
def test_lossless_round_trip_is_bit_exact(tmp_path, suffix):
    frames = torch.randint(
        0, 256, (6, 3, 17, 23), generator=torch.Generator().manual_seed(1), dtype=torch.uint8
    )
    video = to_float(frames)
    path = write_lossless(tmp_path / f"clip{suffix}", video)
    assert path.is_file()
    assert torch.equal(decode_video(path), frames)
    back = read_video(path)
    assert back.dtype == torch.float32 and back.shape == (6, 3, 17, 23)
    assert torch.equal(to_uint8(back), frames)


def test_lossless_rounds_non_level_floats(tmp_path):
    video = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    path = write_lossless(tmp_path / "x.mkv", video)
    assert torch.equal(decode_video(path), to_uint8(video))


def test_lossless_grey_is_written_as_rgb(tmp_path):
    grey = random_video(3, 8, 8)[:, :1]
    back = read_video(write_lossless(tmp_path / "grey.mkv", grey))
    assert back.shape == (3, 3, 8, 8)
    assert torch.equal(to_uint8(back), to_uint8(grey).expand(-1, 3, -1, -1))


def test_lossless_needs_mkv_or_avi(tmp_path):
    with pytest.raises(ValueError, match="mkv"):
        write_lossless(tmp_path / "x.mp4", random_video())


def test_preview_is_written_and_decodable_with_odd_size(tmp_path):
    video = generate("test", SynthConfig(frames=6, size=31), indices=[0]).videos[0]
    path = write_preview(tmp_path / "sub" / "preview.mp4", video)
    assert path.is_file() and path.parent.name == "sub"
    back = read_video(path)
    assert back.shape == (6, 3, 32, 32)  # odd sizes padded to even for yuv420p
    # Lossy but close: H.264 at crf 18 on a smooth clip.
    assert float((back[:, :, :31, :31] - video).abs().mean()) < 0.06


def test_write_video_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="codec"):
        write_video(tmp_path / "x.mkv", random_video(), codec="vp9")
    with pytest.raises(ValueError, match="video"):
        write_video(tmp_path / "x.mkv", random_video() * 2)
    with pytest.raises(ValueError, match="rank"):
        write_video(tmp_path / "x.mkv", random_video()[None])
    assert not list(tmp_path.iterdir())


def test_read_video_sampling_and_resize(tmp_path):
    frames = torch.arange(10, dtype=torch.uint8).mul(25).view(10, 1, 1, 1).expand(10, 3, 12, 16).contiguous()
    path = write_lossless(tmp_path / "ramp.mkv", to_float(frames))
    picked = read_video(path, frames=4)
    assert to_uint8(picked[:, 0, 0, 0]).tolist() == [0, 75, 150, 225]  # indices 0, 3, 6, 9
    longer = read_video(path, frames=16)  # shorter video: frames repeat, order kept
    levels = to_uint8(longer[:, 0, 0, 0]).tolist()
    assert len(levels) == 16 and levels == sorted(levels) and levels[0] == 0 and levels[-1] == 225
    small = read_video(path, frames=2, size=(6, 8))
    assert small.shape == (2, 3, 6, 8)
    assert float(small.min()) >= 0 and float(small.max()) <= 1
    with pytest.raises(ValueError, match="size"):
        read_video(path, size=(0, 4))
    with pytest.raises(ValueError, match="frames"):
        read_video(path, frames=0)


def test_missing_file_names_it(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        read_video(missing)


def test_corrupt_file_names_it(tmp_path):
    corrupt = tmp_path / "x.mp4"
    corrupt.write_bytes(b"this is not a video" * 50)
    with pytest.raises(ValueError, match=r"cannot decode video '.*x\.mp4'"):
        read_video(corrupt)
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="cannot decode video '.*empty.avi'"):
        read_video(empty)


def test_truncated_file_is_an_error_or_fewer_frames(tmp_path):
    path = write_lossless(tmp_path / "t.mkv", random_video(8, 16, 16))
    data = path.read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[:200])
    with pytest.raises(ValueError, match="cut.mkv"):
        read_video(tmp_path / "cut.mkv")


def test_npz_round_trip(tmp_path):
    video = random_video()
    label = torch.tensor([3])
    bf = torch.ones(2, dtype=torch.bfloat16)
    path = save_npz(
        tmp_path / "deep" / "a.npz", video=video, label=label, mask=np.array([True, False]), bf=bf
    )
    loaded = load_npz(path)
    assert set(loaded) == {"video", "label", "mask", "bf"}
    assert torch.equal(loaded["video"], video) and loaded["video"].dtype == torch.float32
    assert torch.equal(loaded["label"], label)
    assert loaded["mask"].dtype == torch.bool
    assert loaded["bf"].dtype == torch.float32
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["a.npz"]  # no temporary left over


def test_npz_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_npz(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.npz"):
        load_npz(bad)
    pickled = tmp_path / "obj.npz"
    np.savez(pickled, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="obj.npz"):
        load_npz(pickled)
    with pytest.raises(ValueError, match=".npz"):
        save_npz(tmp_path / "x.pt", a=torch.zeros(1))


def test_load_video_any_file_and_npz(tmp_path):
    frames = torch.randint(
        0, 256, (4, 3, 8, 10), generator=torch.Generator().manual_seed(3), dtype=torch.uint8
    )
    path = write_lossless(tmp_path / "v.mkv", to_float(frames))
    video, label = load_video_any(path)
    assert label is None and torch.equal(to_uint8(video), frames)
    video, label = load_video_any(str(path), frames=2, size=(4, 5))
    assert video.shape == (2, 3, 4, 5) and label is None

    save_npz(tmp_path / "f.npz", video=to_float(frames), label=torch.tensor(7))
    video, label = load_video_any(tmp_path / "f.npz")
    assert label == 7 and torch.equal(video, to_float(frames))
    save_npz(tmp_path / "u.npz", video=frames[None])  # uint8, batched with N = 1
    video, label = load_video_any(tmp_path / "u.npz")
    assert label is None and video.dtype == torch.float32 and torch.equal(video, to_float(frames))
    save_npz(tmp_path / "two.npz", video=torch.rand(2, 4, 3, 8, 8))
    with pytest.raises(ValueError, match="2 videos"):
        load_video_any(tmp_path / "two.npz")
    save_npz(tmp_path / "nokey.npz", clip=torch.rand(4, 3, 8, 8))
    with pytest.raises(ValueError, match="'video'"):
        load_video_any(tmp_path / "nokey.npz")
    save_npz(tmp_path / "range.npz", video=torch.rand(4, 3, 8, 8) * 3)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        load_video_any(tmp_path / "range.npz")


def test_load_video_any_synth():
    video, label = load_video_any("synth:test:7")
    clips = generate("test", indices=[7])
    assert torch.equal(video, clips.videos[0]) and label == int(clips.labels[0])
    video, label = load_video_any("synth:val:0", frames=8, size=(24, 24))
    assert video.shape == (8, 3, 24, 24) and 0 <= label < 10
    video, _ = load_video_any("synth:train:1", size=(16, 20))
    assert video.shape == (16, 3, 16, 20)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("synth:test", "synth:SPLIT:INDEX"),
        ("synth:dev:1", "split"),
        ("synth:test:-1", "non-negative"),
        ("synth:test:abc", "non-negative"),
        ("synth:test:500", "out of range"),
        ("http://example.com/v.mp4", "scheme 'http'"),
        ("foo:bar", "scheme 'foo'"),
    ],
)
def test_load_video_any_bad_refs(ref, message):
    with pytest.raises(ValueError, match=message):
        load_video_any(ref)


def test_load_video_any_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.avi"):
        load_video_any(tmp_path / "absent.avi")


def test_h264_round_trip_in_memory_keeps_shape_and_smooth_content(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ramp = torch.linspace(0.2, 0.8, 16).view(1, 1, 1, 16).expand(4, 3, 16, 16).contiguous()
    batch = torch.stack([ramp, 1 - ramp])
    decoded = h264_round_trip(batch)
    assert decoded.shape == batch.shape and decoded.dtype == torch.float32
    assert 0 <= float(decoded.min()) and float(decoded.max()) <= 1
    assert float((decoded - batch).abs().mean()) < 3 / 255  # a smooth ramp survives compression
    noise = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert float((h264_round_trip(noise) - noise).abs().mean()) > 10 / 255  # pixel noise does not
    assert h264_round_trip(torch.rand(3, 1, 15, 17)).shape == (3, 1, 15, 17)  # grey, odd sizes
    assert list(tmp_path.iterdir()) == []  # nothing written to disk
    with pytest.raises(ValueError, match="shape"):
        h264_round_trip(torch.rand(3, 16, 16))


def test_toml_errors_name_the_file(tmp_path):
    from vidattack.io import load_toml

    (tmp_path / "ok.toml").write_text('name = "x"\n')
    assert load_toml(tmp_path / "ok.toml") == {"name": "x"}
    (tmp_path / "bad.toml").write_text("name = \n")
    with pytest.raises(ValueError, match="bad.toml"):
        load_toml(tmp_path / "bad.toml")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="binary.toml"):
        load_toml(tmp_path / "binary.toml")
    with pytest.raises(FileNotFoundError, match="absent.toml"):
        load_toml(tmp_path / "absent.toml")


def test_json_text_is_strict_json():
    import json

    record = {"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5], "c": np.float32(0.25), "d": (1, "x"),
              "e": {"f": np.float64("nan")}, "g": tmp_path_like()}  # fmt: skip
    from vidattack.io import json_text

    text = json_text(record)
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard constant {name}"))
    assert back == {"a": None, "b": [None, None, 1.5], "c": 0.25, "d": [1, "x"], "e": {"f": None}, "g": "p/q"}


def tmp_path_like():
    from pathlib import PurePosixPath

    return PurePosixPath("p/q")


def test_save_npz_has_the_mode_of_other_new_files(tmp_path):
    import os

    save_npz(tmp_path / "a.npz", x=torch.zeros(2))
    (tmp_path / "b.json").write_text("{}")
    assert os.stat(tmp_path / "a.npz").st_mode & 0o777 == os.stat(tmp_path / "b.json").st_mode & 0o777


def test_reading_is_bounded_and_sampling_matches_the_whole_video(tmp_path):
    from vidattack.io import resize_video
    from vidattack.sampling import uniform_indices

    frames = torch.randint(0, 256, (9, 3, 12, 10), generator=torch.Generator().manual_seed(5), dtype=torch.uint8)
    path = write_lossless(tmp_path / "v.mkv", to_float(frames))
    for count, size in ((4, None), (12, (6, 5)), (1, (12, 10))):
        expected = to_float(frames)[uniform_indices(9, count)]  # what sampling the decoded whole gives
        if size is not None:
            expected = resize_video(expected, size)
        assert torch.equal(read_video(path, frames=count, size=size), expected)
    with pytest.raises(ValueError, match=r"v\.mkv.*max_frames=8"):
        read_video(path, frames=2, max_frames=8)
    with pytest.raises(ValueError, match=r"v\.mkv.*max_pixels=100"):
        read_video(path, max_pixels=100)
    save_npz(tmp_path / "u.npz", video=frames, label=torch.tensor(2))
    video, label = load_video_any(tmp_path / "u.npz", frames=3)
    assert label == 2 and torch.equal(video, to_float(frames)[torch.tensor([0, 4, 8])])
    with pytest.raises(ValueError, match=r"u\.npz.*max_frames=5"):
        load_video_any(tmp_path / "u.npz", frames=3, max_frames=5)
