"""Attack a model that runs behind an HTTP API, and serve a model behind one.

A deployed video classifier is usually reachable only as a service that answers "which classes, with
what probability" for a clip. :class:`RemoteModel` is the client side: a callable from videos
``[N,T,C,H,W]`` in [0, 1] to pseudo-logits ``[N,K]``, so it slots under :class:`~vidattack.ScoreOracle`
and :class:`~vidattack.LabelOracle` like a local model and every black-box attack runs against it
unchanged, with the oracle counting and capping queries on the client side. :func:`make_server` (and
``vidattack serve``) puts any local model behind the same API, which lets a team measure the black-box
robustness of their own model through its real serving path, and lets the tests check the client
against a real socket.

The wire protocol (version 1), deliberately small:

* ``GET /v1/info`` -> ``{"protocol": 1, "num_classes": K, "class_names": [...], "frames": T,
  "height": H, "width": W, "top_k": k, "requests": r, "videos": v}`` (``requests`` / ``videos``: how
  many classify calls and clips the server has answered, for auditing query counts).
* ``POST /v1/classify`` with a ``.npy`` body (``numpy.save`` of a float32 array ``[N,T,C,H,W]`` in
  [0, 1]; no pickles) -> ``{"indices": [[...]], "probs": [[...]]}``: the top-k classes of each clip
  and their softmax probabilities, best first.

A service that reveals only its top-k probabilities cannot give logits, so :class:`RemoteModel`
returns log-probabilities with the unrevealed mass ``1 - sum(top-k)`` spread evenly over the other
classes: the softmax of that row gives back exactly the revealed top-k probabilities, and the order
of the top-k classes is preserved (an unrevealed class can hold at most the k-th probability, so
the even share is never above it). Score-based attacks that read top-1 (V-BAD, SVA) and label-based
attacks (Opt-attack, Heuristic) therefore see exactly what the service reveals, nothing more.
White-box attacks need gradients and are refused for remote models.
"""

from __future__ import annotations

import io as _io
import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vidattack.video import validate_video

__all__ = ["RemoteModel", "RemoteModelError", "make_server", "is_remote", "PROTOCOL"]

PROTOCOL = 1
# Largest request body the server accepts (a batch of 64 clips of 16x3x112x112 float32 is ~150 MiB).
MAX_BODY_BYTES = 512 * 2**20


class RemoteModelError(RuntimeError):
    """The remote model could not be reached or answered something that is not the protocol."""


def is_remote(reference: str) -> bool:
    """Whether a ``--model`` reference names an HTTP service (``http://`` or ``https://``)."""
    return reference.startswith(("http://", "https://"))


def _encode(videos: Tensor) -> bytes:
    buffer = _io.BytesIO()
    np.save(buffer, videos.detach().to("cpu", torch.float32).contiguous().numpy(), allow_pickle=False)
    return buffer.getvalue()


def _decode(body: bytes) -> np.ndarray:
    try:
        return np.load(_io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise ValueError(f"body is not a .npy array: {error}") from None


class RemoteModel:
    """A classifier behind ``url`` (protocol above), as a callable ``videos [N,T,C,H,W] -> [N,K]``.

    Args:
        url: the service's base URL, e.g. ``http://127.0.0.1:8765``.
        timeout: seconds to wait for each HTTP answer.
        batch_size: most clips per request (the oracle may send more; they are split).

    Attributes:
        num_classes, class_names, num_frames, input_size, top_k: from ``GET /v1/info``.
        black_box_only: always True; the CLI and runner refuse white-box methods on it.

    Raises:
        RemoteModelError: the service is unreachable or does not speak protocol 1.
    """

    black_box_only = True

    def __init__(self, url: str, *, timeout: float = 60.0, batch_size: int = 64) -> None:
        if not is_remote(url):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.batch_size = batch_size
        info = self.info()
        if info.get("protocol") != PROTOCOL:
            raise RemoteModelError(f"{self.url} speaks protocol {info.get('protocol')!r}, expected {PROTOCOL}")
        self.num_classes = int(info["num_classes"])
        self.class_names = list(info.get("class_names") or range(self.num_classes))
        self.top_k = int(info["top_k"])
        frames, height, width = info.get("frames"), info.get("height"), info.get("width")
        self.num_frames = int(frames) if frames else None
        self.input_size = (int(height), int(width)) if height and width else None

    def _request(self, path: str, body: bytes | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            self.url + path,
            data=body,
            method="GET" if body is None else "POST",
            headers={} if body is None else {"Content-Type": "application/x-npy"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:300]
            raise RemoteModelError(f"{self.url}{path} answered HTTP {error.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            raise RemoteModelError(f"cannot reach the remote model at {self.url}: {error}") from None
        except json.JSONDecodeError:
            raise RemoteModelError(f"{self.url}{path} did not answer JSON") from None

    def info(self) -> dict[str, Any]:
        """The service's ``/v1/info`` record (classes, input size, top-k, request counters)."""
        return self._request("/v1/info")

    def __call__(self, videos: Tensor) -> Tensor:
        """Pseudo-logits ``[N, K]`` (log-probabilities, unrevealed mass spread evenly) of ``videos``."""
        if videos.requires_grad and torch.is_grad_enabled():
            raise ValueError("a remote model gives no gradients: use a black-box (scores or labels) method")
        validate_video(videos, "videos")
        rows = [self._classify(videos[start : start + self.batch_size]) for start in range(0, len(videos), self.batch_size)]
        return torch.cat(rows).to(videos.device)

    def _classify(self, videos: Tensor) -> Tensor:
        answer = self._request("/v1/classify", _encode(videos))
        try:
            indices = torch.tensor(answer["indices"], dtype=torch.long)
            probs = torch.tensor(answer["probs"], dtype=torch.float64)
        except (KeyError, TypeError, ValueError):
            raise RemoteModelError(f"{self.url}/v1/classify answered without indices/probs lists") from None
        n = videos.shape[0]
        if indices.shape != probs.shape or indices.dim() != 2 or indices.shape[0] != n:
            raise RemoteModelError(f"{self.url}/v1/classify answered shapes {tuple(indices.shape)} for {n} clips")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.num_classes):
            raise RemoteModelError(f"{self.url}/v1/classify answered a class outside [0, {self.num_classes - 1}]")
        hidden = self.num_classes - indices.shape[1]
        rest = (1.0 - probs.sum(dim=1, keepdim=True)).clamp_min(0.0)
        share = rest / hidden if hidden else torch.zeros_like(rest)
        # A floor keeps log() finite when the service reveals everything (or rounds the rest to zero).
        full = share.clamp_min(1e-30).expand(n, self.num_classes).clone()
        full.scatter_(1, indices, probs.clamp_min(1e-30))
        return full.log().float()


def make_server(
    model: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    top_k: int = 1,
    class_names: list[str] | None = None,
    batch_size: int = 64,
) -> ThreadingHTTPServer:
    """An HTTP server (not yet started: call ``serve_forever``) answering protocol 1 for ``model``.

    Args:
        model: a callable from ``[N,T,C,H,W]`` in [0, 1] to logits ``[N,K]`` (e.g. a zoo model).
        host: the address to bind; the default answers this machine only.
        port: the port (0: any free one; read it back from ``server.server_address``).
        top_k: how many classes (with probabilities) each answer reveals.
        batch_size: most clips run through the model at once.

    The server counts the classify requests and clips it answered (``/v1/info``), so that a client's
    reported query count can be audited against what the service actually saw.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    device = torch.device("cpu")
    if isinstance(model, torch.nn.Module):
        model.eval()
        device = next(iter(model.parameters()), torch.empty(0)).device
    names = class_names if class_names is not None else getattr(model, "class_names", None)
    frames, size = getattr(model, "num_frames", None), getattr(model, "input_size", None)
    lock = threading.Lock()
    counters = {"requests": 0, "videos": 0}
    state: dict[str, Any] = {"num_classes": len(names) if names else None}

    def classify(array: np.ndarray) -> dict[str, Any]:
        videos = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        validate_video(videos, "videos")
        videos = videos.to(device)
        with lock, torch.inference_mode():  # one forward at a time: models are not thread-safe
            logits = torch.cat([model(videos[i : i + batch_size]) for i in range(0, len(videos), batch_size)])
            counters["requests"] += 1
            counters["videos"] += len(videos)
        state["num_classes"] = int(logits.shape[1])
        probs, indices = logits.float().softmax(dim=1).topk(min(top_k, logits.shape[1]), dim=1)
        return {"indices": indices.tolist(), "probs": probs.tolist()}

    def info() -> dict[str, Any]:
        if state["num_classes"] is None:  # a bare callable: learn K from one probe clip
            probe = torch.zeros(1, frames or 16, 3, *(size or (32, 32)), device=device)
            with lock, torch.inference_mode():
                state["num_classes"] = int(model(probe).shape[1])
        return {
            "protocol": PROTOCOL,
            "num_classes": state["num_classes"],
            "class_names": list(names) if names else None,
            "frames": frames,
            "height": size[0] if size else None,
            "width": size[1] if size else None,
            "top_k": top_k,
            **counters,
        }

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, document: dict[str, Any]) -> None:
            body = json.dumps(document).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (the http.server API)
            if self.path == "/v1/info":
                self._send(200, info())
            else:
                self._send(404, {"error": f"no such endpoint {self.path}; use /v1/info or /v1/classify"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/v1/classify":
                self._send(404, {"error": f"no such endpoint {self.path}; POST to /v1/classify"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY_BYTES:
                self._send(413, {"error": f"body must be 1..{MAX_BODY_BYTES} bytes, got {length}"})
                return
            try:
                self._send(200, classify(_decode(self.rfile.read(length))))
            except ValueError as error:
                self._send(400, {"error": str(error)})

        def log_message(self, format: str, *args: Any) -> None:  # keep stderr for the CLI's own lines
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
