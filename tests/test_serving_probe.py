"""The reviewer's probe as a test: malformed and hostile requests to `vidattack serve` on 127.0.0.1.

Each case is sent over a raw socket and must get its 4xx answer within a time limit (never a dropped
connection or a hang), and the server must still answer a valid request afterwards. Sockets have
timeouts and every loop is bounded.
"""

from __future__ import annotations

import io
import json
import socket
import time

import numpy as np
import pytest

from vidattack.remote import RemoteModel
from vidattack.serving import ApiKey, Limits, ServedModel, build_app, start_server

KEY = "probe-key-0123456789"
LIMITS = Limits(max_clips_per_request=4, head_timeout=1.0, body_timeout=1.0, keep_alive=2, max_connections=24)
CLIP = [8, 3, 16, 16]


@pytest.fixture(scope="module")
def server(toy_model):
    served = ServedModel("toy", toy_model, frames=8, height=16, width=16, num_classes=3)
    app = build_app([served], keys=[ApiKey.from_secret("probe", KEY)], limits=LIMITS)
    handle = start_server(app)
    yield handle
    handle.stop()


def _port(handle) -> int:
    return int(handle.url.rsplit(":", 1)[1])


def exchange(port: int, pieces: list[tuple[bytes, float]], *, limit: float = 6.0) -> tuple[int | None, bytes, float]:
    """Send ``(bytes, pause after)`` pieces, then read one answer: ``(status or None, body, seconds)``."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        try:
            for data, pause in pieces:
                sock.sendall(data)
                if pause:
                    time.sleep(pause)
        except OSError:
            pass  # the server may answer (and close) before everything is sent
        received = b""
        while time.monotonic() - started < limit:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            if length and len(body) >= length[0]:
                break
    seconds = time.monotonic() - started
    if not received.startswith(b"HTTP/1.1 "):
        return None, received, seconds
    return int(received[9:12]), received.partition(b"\r\n\r\n")[2], seconds


def post(body: bytes, headers: dict[str, str] | None = None, *, path: str = "/v2/models/toy/infer",
         length: bool = True, key: bool = True) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    if key:
        lines.append(f"X-API-Key: {KEY}")
    if length:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def json_request(data, *, shape=None, datatype: str = "FP32") -> bytes:
    document = {"inputs": [{"name": "video", "datatype": datatype, "shape": shape or [1, *CLIP], "data": data}]}
    return json.dumps(document).encode()


def binary_request(array: np.ndarray, *, shape=None, size=None, datatype: str = "FP32") -> tuple[bytes, dict[str, str]]:
    raw = array.astype("<f4").tobytes()
    entry = {"name": "video", "datatype": datatype, "shape": shape or list(array.shape),
             "parameters": {"binary_data_size": len(raw) if size is None else size}}
    header = json.dumps({"inputs": [entry]}).encode()
    return header + raw, {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"}


def _clip(value: float = 0.5, n: int = 1, size: int = 16) -> np.ndarray:
    return np.full((n, 8, 3, size, size), value, dtype=np.float32)


def _cases() -> dict[str, tuple[list[tuple[bytes, float]], int, float]]:
    """name -> (pieces, expected status, time limit in seconds)."""
    valid = _clip().reshape(-1).tolist()
    nan_binary = _clip()
    nan_binary[0, 0, 0, 0, 0] = np.nan
    big_body, big_headers = binary_request(_clip(size=32))
    many_body, many_headers = binary_request(_clip(n=5))
    bad_size_body, bad_size_headers = binary_request(_clip(), size=12)
    npy = io.BytesIO()
    np.save(npy, np.zeros(4, dtype=[("a", "<f4"), ("b", "<i8")]), allow_pickle=False)
    header_only = json.dumps({"inputs": []}).encode()
    declared = post(b"x" * 10)[: -10].replace(b"Content-Length: 10", b"Content-Length: 1000")
    once = lambda data: [(data, 0.0)]  # noqa: E731
    return {
        "bad JSON": (once(post(b"{not json", {"Content-Type": "application/json"})), 400, 2),
        "wrong content type (text/plain)": (once(post(json_request(valid), {"Content-Type": "text/plain"})), 415, 2),
        "wrong datatype (INT32)": (once(post(json_request([0] * len(valid), datatype="INT32"))), 400, 2),
        "NaN in JSON data": (once(post(json_request(valid).replace(b"0.5", b"NaN", 1))), 400, 2),
        "NaN in binary FP32 data": (once(post(*binary_request(nan_binary))), 400, 2),
        "values outside [0, 1]": (once(post(*binary_request(_clip(1.5)))), 400, 2),
        "Content-Length: abc": (once(post(b"{}", {"Content-Length": "abc"}, length=False)), 400, 2),
        "Content-Length 500 MB, 10 bytes sent": (once(post(b"x" * 10)[:-10].replace(b"Content-Length: 10", b"Content-Length: 524288000") + b"x" * 10), 413, 2),
        "slow body (10 of 1000 bytes, then silence)": ([(declared + b"{" * 10, 0.0)], 408, 1.0 + 2),
        "body trickled 1 byte / 0.25 s": ([(declared, 0.0)] + [(b" ", 0.25)] * 8, 408, 1.0 + 2),
        "slow headers (slowloris)": ([(b"POST /v2/models/toy/infer HTTP/1.1\r\n", 0.3), (b"Host: x\r\n", 0.3), (b"X-A: 1\r\n", 0.3), (b"X-B: 1\r\n", 0.3)], 408, 1.0 + 2),
        "shape mismatch (32x32 clip, 16x16 model; tail not sent)": (once(post(big_body, big_headers)[: -len(big_body) + big_body.index(b"}]}") + 3]), 400, 0.9),
        "too many clips (5 > 4; tail not sent)": (once(post(many_body, many_headers)[: -len(many_body) + many_body.index(b"}]}") + 3]), 413, 0.9),
        "structured-dtype .npy body": (once(post(npy.getvalue(), {"Content-Type": "application/octet-stream"})), 400, 2),
        "binary_data_size disagrees with shape": (once(post(bad_size_body, bad_size_headers)), 400, 2),
        "Inference-Header-Content-Length > body": (once(post(header_only, {"Inference-Header-Content-Length": "99999"})), 400, 2),
        "chunked body, no Content-Length": (once(post(b"2\r\n{}\r\n0\r\n\r\n", {"Transfer-Encoding": "chunked"}, length=False)), 411, 2),
        "gzip Content-Encoding": (once(post(json_request(valid), {"Content-Encoding": "gzip"})), 415, 2),
        "ragged JSON data": (once(post(json_request([[0.5, 0.5], [0.5]]))), 400, 2),
        "booleans as FP32 data": (once(post(json_request([True] * len(valid)))), 400, 2),
        "header JSON not an object": (once(post(b"[1, 2]")), 400, 2),
        "unknown model": (once(post(json_request(valid), path="/v2/models/nope/infer")), 404, 2),
        "no API key": (once(post(json_request(valid), key=False)), 401, 2),
        "GET on /infer": (once(b"GET /v2/models/toy/infer HTTP/1.1\r\nHost: x\r\n\r\n"), 405, 2),
        "unknown route": (once(b"GET /v1/classify HTTP/1.1\r\nHost: x\r\n\r\n"), 404, 2),
    }


CASES = _cases()


@pytest.mark.parametrize("case", list(CASES))
def test_each_probe_gets_its_4xx_in_time_and_the_server_keeps_serving(server, toy_data, case) -> None:
    pieces, expected, limit = CASES[case]
    status, body, seconds = exchange(_port(server), pieces, limit=limit + 3)
    print(f"probe | {case} | {status} | {seconds:.2f} s")
    assert status == expected, body[:200]
    assert seconds <= limit
    if case != "Content-Length: abc":  # that one uvicorn's HTTP parser answers (plain text) before the app
        assert json.loads(body)["error"]
    remote = RemoteModel(server.url + "/v2/models/toy", api_key=KEY, retries=0, timeout=5)
    assert remote(toy_data[0][:1]).shape == (1, 3)


def test_many_idle_connections_are_answered_and_reaped(server, toy_data) -> None:
    port = _port(server)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(LIMITS.max_connections + 6)]
    try:
        started = time.monotonic()
        status, _, _ = exchange(port, [(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n", 0.0)], limit=3)
        assert status == 503  # over the connection limit: answered, not queued forever
        answers = []
        for sock in idle:  # each idle connection gets a 408 once its head deadline passes, then EOF
            data = b""
            while time.monotonic() - started < LIMITS.head_timeout + 5:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            answers.append(data[:12])
        assert answers == [b"HTTP/1.1 408"] * len(idle)
        assert time.monotonic() - started < LIMITS.head_timeout + 3
    finally:
        for sock in idle:
            sock.close()
    remote = RemoteModel(server.url + "/v2/models/toy", api_key=KEY, retries=0, timeout=5)
    assert remote(toy_data[0][:2]).shape == (2, 3)
