"""Generate the malformed-input corpus of ``tests/test_corpus.py`` into a directory.

Run at test time (``build(directory, marker)``) so that nothing large is stored in the repository; also
runnable by hand: ``python tests/corpus/make_corpus.py OUT_DIR`` writes the files and prints their names.

Every file is small on disk; some declare (in their headers) far more data than they hold, or would
decode into gigabytes, which is what the loaders' limits are for. ``marker`` is a path that the pickled
payloads would create if any loader executed them: the test asserts it never exists.
"""

from __future__ import annotations

import io
import json
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

from vidattack import io as vio
from vidattack import models

#: The tiny model every case shares: 4 frames of 16x16 RGB, 5 classes.
FRAMES, SIZE, CLASSES = 4, 16, 5


class Payload:
    """Unpickling this object creates ``marker`` (what a malicious checkpoint would do, harmlessly)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.marker, "w"))


def _npy_bytes(header_shape: tuple[int, ...], dtype: str, data: bytes) -> bytes:
    """A ``.npy`` member whose header claims ``header_shape`` whatever ``data`` holds."""
    header = repr({"descr": np.dtype(dtype).str, "fortran_order": False, "shape": header_shape}).encode("latin1")
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _clip(frames: int = FRAMES, size: int = SIZE, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((frames, 3, size, size), dtype=np.float32)


def _flat_video(path: Path, height: int, width: int) -> Path:
    """One black FFV1 frame of ``height x width``, encoded from uint8 (a float frame would be 200 MB)."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


def build(directory: Path, marker: Path) -> dict[str, Path]:
    """Write every corpus file into ``directory``; returns ``{name: path}``."""
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> Path:
        path = directory / name
        path.write_bytes(data)
        files[name] = path
        return path

    def add(name: str, path: Path) -> Path:
        files[name] = path
        return path

    # ---- the tiny model and valid inputs
    net = models.build("lrcn", num_classes=CLASSES, width=0.25, dropout=0.0, num_frames=FRAMES,
                       input_size=(SIZE, SIZE), seed=0)  # fmt: skip
    weights, document = models.save(net, directory / "tiny")
    add("tiny", directory / "tiny")
    add("tiny.safetensors", weights)
    add("tiny.json", document)
    clip = _clip()
    add("clip.npz", _npz(directory / "clip.npz", video=clip))
    add("clip_uint8.npz", _npz(directory / "clip_uint8.npz", video=(clip * 255).round().astype(np.uint8),
                               label=np.array(1)))  # fmt: skip
    add("clip_batched.npz", _npz(directory / "clip_batched.npz", video=clip[None]))
    add("clip_two_frames.npz", _npz(directory / "clip_two_frames.npz", video=_clip(frames=2)))
    add("clip_one_frame.npz", _npz(directory / "clip_one_frame.npz", video=_clip(frames=1)))
    add("clip_float64.npz", _npz(directory / "clip_float64.npz", video=clip.astype(np.float64)))
    add("clip_float16.npz", _npz(directory / "clip_float16.npz", video=clip.astype(np.float16)))
    add("clip_bigendian.npz", _npz(directory / "clip_bigendian.npz", video=clip.astype(">f4")))
    add("clip_fortran.npz", _npz(directory / "clip_fortran.npz", video=np.asfortranarray(clip)))
    add("clip_grey.npz", _npz(directory / "clip_grey.npz", video=clip[:, :1]))
    add("clip_large.npz", _npz(directory / "clip_large.npz", video=_clip(frames=6, size=64)))
    video = torch.from_numpy(clip)
    add("clip.mkv", vio.write_lossless(directory / "clip.mkv", video))
    add("clip.mp4", vio.write_preview(directory / "clip.mp4", video))
    add("one_frame.mkv", vio.write_lossless(directory / "one_frame.mkv", video[:1]))
    add("two_frames.mkv", vio.write_lossless(directory / "two_frames.mkv", video[:2]))
    add("long.mkv", vio.write_lossless(directory / "long.mkv", torch.from_numpy(_clip(frames=40, size=8))))
    add("wide.mkv", vio.write_lossless(directory / "wide.mkv", torch.zeros(2, 3, 8, 640)))
    add("square640.mkv", vio.write_lossless(directory / "square640.mkv", torch.zeros(2, 3, 640, 640)))
    # One frame past the default 4096x4096 pixels (FFV1 of a flat frame is a few KB).
    add("huge_frame.mkv", _flat_video(directory / "huge_frame.mkv", 4104, 4104))

    # ---- broken video files
    good = files["clip.mkv"].read_bytes()
    put("empty.mp4", b"")
    put("empty.mkv", b"")
    put("text.mp4", b"this is not a video\n" * 100)
    put("random.avi", np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    put("truncated.mkv", good[:200])
    put("header_only.mkv", good[:48])
    put("npz_renamed.mp4", files["clip.npz"].read_bytes())
    put("json_renamed.webm", b'{"video": [1, 2, 3]}')
    wav = io.BytesIO()
    import wave

    with wave.open(wav, "wb") as sound:
        sound.setnchannels(1), sound.setsampwidth(2), sound.setframerate(8000)
        sound.writeframes(b"\x00\x00" * 800)
    put("audio_only.mp4", wav.getvalue())
    (directory / "folder.mp4").mkdir(exist_ok=True)
    files["folder.mp4"] = directory / "folder.mp4"

    # ---- broken tensor files
    put("empty.npz", b"")
    put("garbage.npz", b"garbage" * 20)
    buffer = io.BytesIO()
    np.save(buffer, clip)
    put("npy_renamed.npz", buffer.getvalue())
    put("npy_renamed.pt", buffer.getvalue())
    put("truncated.npz", files["clip.npz"].read_bytes()[:300])
    put("truncated_tail.npz", files["clip_large.npz"].read_bytes()[:-200])
    _zip(directory / "text_member.npz", {"video.npy": b"not an array"})
    files["text_member.npz"] = directory / "text_member.npz"
    add("no_video.npz", _npz(directory / "no_video.npz", clip=clip))
    add("empty_archive.npz", _zip(directory / "empty_archive.npz", {}))
    add("rank3.npz", _npz(directory / "rank3.npz", video=clip[0]))
    add("rank6.npz", _npz(directory / "rank6.npz", video=clip[None, None]))
    add("scalar.npz", _npz(directory / "scalar.npz", video=np.array(0.5, dtype=np.float32)))
    add("two_videos.npz", _npz(directory / "two_videos.npz", video=np.stack([clip, clip])))
    add("int64.npz", _npz(directory / "int64.npz", video=(clip * 255).astype(np.int64)))
    add("bool.npz", _npz(directory / "bool.npz", video=clip > 0.5))
    add("complex.npz", _npz(directory / "complex.npz", video=clip.astype(np.complex64)))
    add("uint16.npz", _npz(directory / "uint16.npz", video=(clip * 65535).astype(np.uint16)))
    add("strings.npz", _npz(directory / "strings.npz", video=np.array(["a", "b"])))
    for name, value in (("nan", np.nan), ("inf", np.inf), ("neginf", -np.inf), ("above", 1.5), ("below", -0.5)):
        bad = clip.copy()
        bad[1, 0, 2, 3] = value
        add(f"{name}.npz", _npz(directory / f"{name}.npz", video=bad))
    hidden = _clip(frames=41)
    hidden[1, 0, 0, 0] = np.nan  # frame 1 is not among the 4 sampled from 41: still refused
    add("nan_unsampled.npz", _npz(directory / "nan_unsampled.npz", video=hidden))
    add("channels2.npz", _npz(directory / "channels2.npz", video=np.zeros((4, 2, 8, 8), np.float32)))
    add("channels4.npz", _npz(directory / "channels4.npz", video=np.zeros((4, 4, 8, 8), np.float32)))
    add("no_frames.npz", _npz(directory / "no_frames.npz", video=np.zeros((0, 3, 8, 8), np.float32)))
    add("no_height.npz", _npz(directory / "no_height.npz", video=np.zeros((4, 3, 0, 8), np.float32)))
    for name, label in (("label_float", np.array(1.5)), ("label_negative", np.array(-1)),
                        ("label_two", np.array([1, 2])), ("label_bool", np.array(True)),
                        ("label_string", np.array("cat")), ("label_empty", np.zeros(0, np.int64))):  # fmt: skip
        add(f"{name}.npz", _npz(directory / f"{name}.npz", video=clip, label=label))
    # Headers that claim far more data than the file holds: refused from the header alone.
    put("claims_frames.npz", b"")
    _zip(directory / "claims_frames.npz", {"video.npy": _npy_bytes((10**9, 3, 16, 16), "<f4", b"\x00" * 64)})
    _zip(directory / "claims_pixels.npz", {"video.npy": _npy_bytes((4, 3, 100_000, 100_000), "|u1", b"\x00" * 64)})
    files["claims_pixels.npz"] = directory / "claims_pixels.npz"
    _zip(directory / "claims_bytes.npz", {"video.npy": _npy_bytes((9_000, 3, 4096, 4096), "|u1", b"\x00" * 64)})
    files["claims_bytes.npz"] = directory / "claims_bytes.npz"
    _zip(directory / "short_data.npz", {"video.npy": _npy_bytes((4, 3, 16, 16), "<f4", b"\x00" * 100)})
    files["short_data.npz"] = directory / "short_data.npz"
    _zip(directory / "bad_header.npz", {"video.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': 'x"})
    files["bad_header.npz"] = directory / "bad_header.npz"
    # 3000 frames of 224x224 zeros, uint8, compressed (~440 KB): the memory case.
    np.savez_compressed(directory / "zeros3000.npz", video=np.zeros((3000, 3, 224, 224), np.uint8))
    files["zeros3000.npz"] = directory / "zeros3000.npz"

    # ---- pickled payloads, in every format a loader accepts
    payload = Payload(marker)
    put("payload.pkl.npz", pickle.dumps({"video": payload}))
    put("payload_raw.pt", pickle.dumps({"weight": payload}))
    for suffix in (".pt", ".pth", ".bin", ".ckpt"):
        path = directory / f"payload{suffix}"
        torch.save({"weight": torch.zeros(1), "evil": payload}, path)
        files[path.name] = path
    arrays = io.BytesIO()
    np.save(arrays, np.array([payload], dtype=object), allow_pickle=True)
    _zip(directory / "payload_object.npz", {"video.npy": arrays.getvalue()})
    files["payload_object.npz"] = directory / "payload_object.npz"
    _zip(directory / "payload_attacker.npz", {"videos.npy": arrays.getvalue(), "labels.npy": arrays.getvalue()})
    files["payload_attacker.npz"] = directory / "payload_attacker.npz"
    put("payload.safetensors", pickle.dumps(payload))
    stem = directory / "payload_ckpt"
    (stem.with_suffix(".json")).write_bytes(pickle.dumps(payload))
    files["payload_ckpt"] = stem

    # ---- checkpoints
    state = {key: value.clone() for key, value in net.net.state_dict().items()}
    torch.save(state, directory / "bare.pt")
    files["bare.pt"] = directory / "bare.pt"
    torch.save(torch.zeros(3), directory / "tensor.pt")
    files["tensor.pt"] = directory / "tensor.pt"
    torch.save({}, directory / "empty_dict.pt")
    files["empty_dict.pt"] = directory / "empty_dict.pt"
    put("empty.pt", b"")
    put("garbage.pt", b"garbage" * 30)
    put("truncated.pt", files["bare.pt"].read_bytes()[:500])
    doc = json.loads(document.read_text())
    raw_weights = weights.read_bytes()

    def checkpoint(name: str, json_text: str | None, weight_bytes: bytes | None) -> None:
        if json_text is not None:
            (directory / f"{name}.json").write_text(json_text)
        if weight_bytes is not None:
            (directory / f"{name}.safetensors").write_bytes(weight_bytes)
        files[name] = directory / name

    checkpoint("ck_truncated_weights", json.dumps(doc), raw_weights[: len(raw_weights) // 2])
    checkpoint("ck_empty_weights", json.dumps(doc), b"")
    checkpoint("ck_garbage_weights", json.dumps(doc), b"\xff" * 64)
    checkpoint("ck_no_weights", json.dumps(doc), None)
    checkpoint("ck_broken_json", json.dumps(doc)[:-5], raw_weights)
    checkpoint("ck_empty_json", "", raw_weights)
    checkpoint("ck_list_json", "[1, 2, 3]", raw_weights)
    checkpoint("ck_wrong_format", json.dumps({**doc, "format": "something-else"}), raw_weights)
    checkpoint("ck_unknown_arch", json.dumps({**doc, "arch": "no-such-arch"}), raw_weights)
    checkpoint("ck_bad_kwargs", json.dumps({**doc, "arch_kwargs": {"num_classes": "many"}}), raw_weights)
    checkpoint("ck_shape_mismatch", json.dumps({**doc, "arch_kwargs": {**doc.get("arch_kwargs", {}), "num_classes": 7}}),
               raw_weights)  # fmt: skip
    checkpoint("ck_binary_json", None, raw_weights)
    (directory / "ck_binary_json.json").write_bytes(b"\xff\xfe\x00garbage")
    put("bare.safetensors", raw_weights[: len(raw_weights) // 3])
    from safetensors.torch import save_file

    save_file({key: value.contiguous() for key, value in state.items()}, str(directory / "nometa.safetensors"))
    files["nometa.safetensors"] = directory / "nometa.safetensors"

    # ---- campaign configs (files; inline texts live in the test)
    put("binary.toml", b"\x00\xff\xfe\x80" * 50)
    put("latin1.toml", 'name = "caf\xe9"\n'.encode("latin-1"))
    put("empty.toml", b"")
    (directory / "folder.toml").mkdir(exist_ok=True)
    files["folder.toml"] = directory / "folder.toml"
    return files


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus-out")
    for key in sorted(build(out, out / "MARKER")):
        print(key)
