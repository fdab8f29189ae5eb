"""The Open Inference Protocol (KServe v2 REST) as an ASGI app (Starlette) over :class:`ServedModel`\\ s.

Endpoints: ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2`` (server metadata),
``GET /v2/models/{name}[/versions/{v}]`` (model metadata), ``GET /v2/models/{name}/ready``,
``POST /v2/models/{name}[/versions/{v}]/infer`` (JSON or binary tensors, classification extension) and
``GET /metrics`` (Prometheus text). Every refusal is a 4xx (or 503 when busy) with a JSON body
``{"error": "..."}``.

An inference request is checked in the order that costs the server least: model name, API key, content
type and encoding, ``Content-Length`` and ``Inference-Header-Content-Length`` against the most a
request for this model can need, then the JSON header (input name, datatype, clip shape against the
model's declared ``[T, C, H, W]``, clips per request, binary sizes), then the key's budget (429), and
only then the tensor bytes are read (under a deadline), decoded and checked (finite, in [0, 1]). The
model runs after a slot of the concurrency limit is free and the budget is charged atomically.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vidattack.remote.protocol import (
    HEADER_LENGTH,
    ProtocolError,
    element_count,
    encode_message,
    format_classification,
    strict_json,
    tensor_from_bytes,
    tensor_from_json,
)
from vidattack.serving.keys import ApiKey, digest
from vidattack.serving.metrics import CONTENT_TYPE, Metrics
from vidattack.serving.served import ServedModel
from vidattack.serving.store import AuditStore

__all__ = ["Limits", "build_app", "ANONYMOUS", "INPUT_NAME"]

ANONYMOUS = "anonymous"  # the audit name of requests to a server without keys
INPUT_NAME = "video"
_INPUT_DATATYPES = {"FP32": 4, "FP64": 8}
# A JSON number of a pixel in [0, 1] takes at most this many bytes ("0.12345678901234568, ").
_JSON_BYTES_PER_VALUE = 26


@dataclass(frozen=True)
class Limits:
    """What one request and the whole server may take.

    Attributes:
        max_clips_per_request: most clips in one inference request (413 above).
        max_concurrent: inference requests running or waiting for the model at once.
        queue_timeout: seconds a request waits for one of those slots before a 503.
        body_timeout: seconds a body may take, plus ``Content-Length / min_body_rate`` (408 after).
        min_body_rate: bytes per second a body must at least arrive at.
        max_header_bytes: most bytes of the JSON header of a binary request.
        head_timeout: seconds a connection may take to send a request line and headers (408 after;
            enforced by :mod:`vidattack.serving.runner`).
        keep_alive: seconds an idle kept-alive connection stays open.
        max_connections: open connections at most (uvicorn answers 503 above).
    """

    max_clips_per_request: int = 16
    max_concurrent: int = 4
    queue_timeout: float = 30.0
    body_timeout: float = 10.0
    min_body_rate: float = 1 * 2**20
    max_header_bytes: int = 64 * 2**10
    head_timeout: float = 10.0
    keep_alive: int = 5
    max_connections: int = 128

    def __post_init__(self) -> None:
        for name in ("max_clips_per_request", "max_concurrent", "max_header_bytes", "keep_alive", "max_connections"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("queue_timeout", "body_timeout", "min_body_rate", "head_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


class Refusal(Exception):
    """An answer other than 200: status, message and extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class _Body:
    """Reads exactly ``n`` more bytes of the request body, all of it before ``deadline`` (loop time)."""

    def __init__(self, request: Request, deadline: float) -> None:
        self._receive = request.receive
        self._buffer = bytearray()
        self._more = True
        self.deadline = deadline
        self.complete = False

    async def read(self, n: int) -> bytes:
        loop = asyncio.get_running_loop()
        while len(self._buffer) < n:
            remaining = self.deadline - loop.time()
            if remaining <= 0 or not self._more:
                if not self._more:
                    raise Refusal(400, "body ended before its Content-Length")
                raise Refusal(408, "request body not received in time")
            try:
                message = await asyncio.wait_for(self._receive(), remaining)
            except asyncio.TimeoutError:
                raise Refusal(408, "request body not received in time") from None
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            self._buffer += message.get("body", b"")
            self._more = bool(message.get("more_body", False))
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        self.complete = not self._more and not self._buffer
        return data


class _Server:
    """The app's state and handlers."""

    def __init__(
        self,
        models: list[ServedModel],
        keys: list[ApiKey] | None,
        store: AuditStore,
        limits: Limits,
        anonymous_budget: int | None,
    ) -> None:
        self.models = {m.name: m for m in models}
        if len(self.models) != len(models):
            raise ValueError("model names must be unique")
        self.keys = {k.sha256: k for k in keys} if keys else None
        self.anonymous = ApiKey(ANONYMOUS, "", anonymous_budget)
        self.store, self.limits, self.metrics = store, limits, Metrics()
        self.model_locks = {name: threading.Lock() for name in self.models}
        self._slots: asyncio.Semaphore | None = None

    # --- helpers ----------------------------------------------------------------------------------
    def slots(self) -> asyncio.Semaphore:
        if self._slots is None:  # created inside the running loop
            self._slots = asyncio.Semaphore(self.limits.max_concurrent)
        return self._slots

    def model(self, request: Request) -> ServedModel:
        name = request.path_params["name"]
        if name not in self.models:
            raise Refusal(404, f"no model named {name!r}; served: {sorted(self.models)}")
        version = request.path_params.get("version")
        if version not in (None, "1"):
            raise Refusal(404, f"model {name!r} has only version '1', not {version!r}")
        return self.models[name]

    def authenticate(self, request: Request) -> ApiKey:
        if self.keys is None:
            return self.anonymous
        secret = request.headers.get("x-api-key")
        authorization = request.headers.get("authorization", "")
        if secret is None and authorization[:7].lower() == "bearer ":
            secret = authorization[7:].strip()
        challenge = {"WWW-Authenticate": 'Bearer realm="vidattack"'}
        if not secret:
            raise Refusal(401, "an API key is required (Authorization: Bearer KEY or X-API-Key: KEY)", challenge)
        hashed = digest(secret)
        for known, key in self.keys.items():
            if hmac.compare_digest(known, hashed):
                return key
        raise Refusal(403, "unknown API key", challenge)

    def metadata(self, served: ServedModel) -> dict[str, Any]:
        return {
            "name": served.name,
            "versions": ["1"],
            "platform": "vidattack_pytorch",
            "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, *served.clip_shape]}],
            "outputs": [{"name": served.output_name, "datatype": "FP32", "shape": [-1, served.num_classes]}],
            "parameters": {
                "layout": "NTCHW",
                "value_range": [0.0, 1.0],
                "input_datatypes": sorted(_INPUT_DATATYPES),
                "class_names": served.class_names,
                "reveal": served.reveal,
                "top_k": served.top_k if served.reveal == "top-k" else None,
                "max_clips_per_request": self.limits.max_clips_per_request,
                "extensions": ["binary_tensor_data", "classification"],
            },
        }

    # --- handlers ---------------------------------------------------------------------------------
    async def live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(self, request: Request) -> Response:
        return JSONResponse({"ready": True})

    async def server_metadata(self, request: Request) -> Response:
        from vidattack import __version__

        return JSONResponse(
            {"name": "vidattack", "version": __version__, "extensions": ["binary_tensor_data", "classification"]}
        )

    async def model_metadata(self, request: Request) -> Response:
        try:
            served = self.model(request)
            self.authenticate(request)
        except Refusal as refusal:
            return self.refuse(refusal)
        return JSONResponse(self.metadata(served))

    async def model_ready(self, request: Request) -> Response:
        try:
            served = self.model(request)
            self.authenticate(request)
        except Refusal as refusal:
            return self.refuse(refusal)
        return JSONResponse({"name": served.name, "ready": True})

    async def prometheus(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    def refuse(self, refusal: Refusal, *, close: bool = False) -> Response:
        self.metrics.errors.labels(str(refusal.status)).inc()
        headers = dict(refusal.headers)
        if close:  # the body was not read to its end: the connection cannot carry another request
            headers["Connection"] = "close"
        return _error(refusal.status, refusal.message, headers)

    async def infer(self, request: Request) -> Response:
        started = time.monotonic()
        body: _Body | None = None
        served_name, key_name, clips = request.path_params.get("name", "?"), "?", 0
        try:
            served = self.model(request)
            key = self.authenticate(request)
            key_name = key.name
            body, document, shape, raw_size, header_size = await self._read_header(request, served)
            clips = shape[0]
            if key.budget is not None and self.store.used(key.name, served.name) + clips > key.budget:
                raise Refusal(429, f"query budget of key {key.name!r} for {served.name!r} is spent ({key.budget} clips)")
            videos = await self._read_tensor(body, document, shape, raw_size)
            outputs = self._wanted_outputs(document, served)
            logits = await self._run(served, key, videos)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening; this only ends the handler
        except Refusal as refusal:
            if served_name in self.models:  # unknown names are not audited: they would let anyone grow the table
                self.store.record(key_name, served_name, clips, refusal.status, refusal.message)
                self.metrics.requests.labels(served_name, str(refusal.status)).inc()
            return self.refuse(refusal, close=body is None or not body.complete)
        self.store.record(key_name, served.name, clips, 200)
        self.metrics.requests.labels(served.name, "200").inc()
        self.metrics.clips.labels(served.name).inc(clips)
        self.metrics.seconds.labels(served.name).observe(time.monotonic() - started)
        return self._answer(document, served, logits, outputs)

    async def _read_header(
        self, request: Request, served: ServedModel
    ) -> tuple[_Body, dict[str, Any], list[int], int | None, int]:
        """The JSON header of an inference request, checked against ``served`` before any tensor byte is read."""
        limits = self.limits
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ("", "application/json", "application/octet-stream"):
            raise Refusal(415, f"content type must be application/json or application/octet-stream, got {content_type!r}")
        if request.headers.get("content-encoding", "identity").strip().lower() != "identity":
            raise Refusal(415, "compressed request bodies are not accepted (Content-Encoding must be identity)")
        length_text = request.headers.get("content-length")
        if length_text is None:
            raise Refusal(411, "Content-Length is required")
        if not length_text.isdigit():
            raise Refusal(400, "Content-Length must be a non-negative integer")
        length = int(length_text)
        clip_values = element_count(served.clip_shape)
        max_tensor = limits.max_clips_per_request * clip_values * max(_INPUT_DATATYPES.values())
        header_text = request.headers.get(HEADER_LENGTH.lower())
        if header_text is None:
            header_size = length
            max_length = limits.max_header_bytes + limits.max_clips_per_request * clip_values * _JSON_BYTES_PER_VALUE
        else:
            if not header_text.isdigit():
                raise Refusal(400, f"{HEADER_LENGTH} must be a non-negative integer")
            header_size = int(header_text)
            if header_size > length:
                raise Refusal(400, f"{HEADER_LENGTH} {header_size} is larger than Content-Length {length}")
            if header_size > limits.max_header_bytes:
                raise Refusal(413, f"{HEADER_LENGTH} {header_size} is over {limits.max_header_bytes} bytes")
            max_length = header_size + max_tensor
        if length > max_length:
            raise Refusal(
                413,
                f"Content-Length {length} is over the {max_length} bytes that {limits.max_clips_per_request} clips "
                f"of {list(served.clip_shape)} can need",
            )
        loop = asyncio.get_running_loop()
        body = _Body(request, loop.time() + limits.body_timeout + length / limits.min_body_rate)
        try:
            document = strict_json(await body.read(header_size), "request header")
        except ProtocolError as error:
            raise Refusal(400, str(error)) from None
        if not isinstance(document, dict):
            raise Refusal(400, "request must be a JSON object")
        inputs = document.get("inputs")
        if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
            raise Refusal(400, f"inputs must be a list of one tensor named {INPUT_NAME!r}")
        entry = inputs[0]
        if entry.get("name") != INPUT_NAME:
            raise Refusal(400, f"input must be named {INPUT_NAME!r}, got {entry.get('name')!r}")
        if entry.get("datatype") not in _INPUT_DATATYPES:
            raise Refusal(400, f"input datatype must be one of {sorted(_INPUT_DATATYPES)}, got {entry.get('datatype')!r}")
        shape = entry.get("shape")
        if not isinstance(shape, list) or len(shape) != 5 or not all(type(s) is int for s in shape):
            raise Refusal(400, f"input shape must be [N, T, C, H, W] ints, got {shape!r}")
        if tuple(shape[1:]) != served.clip_shape:
            raise Refusal(400, f"clip shape {shape[1:]} does not match the model's [T, C, H, W] {list(served.clip_shape)}")
        if not 1 <= shape[0] <= limits.max_clips_per_request:
            raise Refusal(413, f"a request may hold 1..{limits.max_clips_per_request} clips, got {shape[0]}")
        parameters = entry.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise Refusal(400, "input parameters must be an object")
        raw_size = parameters.get("binary_data_size")
        tail = length - header_size
        if raw_size is None:
            if tail:
                raise Refusal(400, f"{tail} bytes after the JSON header but no binary_data_size")
            if "data" not in entry:
                raise Refusal(400, "input has neither data nor binary_data_size")
        else:
            expected = element_count(shape) * _INPUT_DATATYPES[entry["datatype"]]
            if type(raw_size) is not int or raw_size != expected or raw_size != tail:
                raise Refusal(
                    400, f"binary_data_size {raw_size!r} must be {expected} for shape {shape} and match the {tail} bytes sent"
                )
        return body, document, shape, raw_size, header_size

    async def _read_tensor(self, body: _Body, document: dict[str, Any], shape: list[int], raw_size: int | None) -> torch.Tensor:
        entry = document["inputs"][0]
        try:
            if raw_size is None:
                array = tensor_from_json(entry, "inputs[0]")
            else:
                array = tensor_from_bytes(entry, await body.read(raw_size), "inputs[0]")
        except ProtocolError as error:
            raise Refusal(400, str(error)) from None
        array = np.asarray(array, dtype=np.float32)
        if not np.isfinite(array).all():
            raise Refusal(400, "input holds NaN or infinite values")
        if array.size and (array.min() < 0.0 or array.max() > 1.0):
            raise Refusal(400, f"input values must be in [0, 1], got [{array.min():.4g}, {array.max():.4g}]")
        return torch.from_numpy(array.copy())

    def _wanted_outputs(self, document: dict[str, Any], served: ServedModel) -> tuple[int | None, bool]:
        """``(classification k or None, binary)`` asked for by the request, bounded by what the server reveals."""
        parameters = document.get("parameters") or {}
        binary = bool(parameters.get("binary_data_output", False)) if isinstance(parameters, dict) else False
        k: int | None = None
        outputs = document.get("outputs")
        if outputs is not None:
            if not isinstance(outputs, list) or len(outputs) > 1:
                raise Refusal(400, f"outputs must list at most one tensor, {served.output_name!r}")
            for entry in outputs:
                if not isinstance(entry, dict) or entry.get("name") != served.output_name:
                    raise Refusal(400, f"the only output is {served.output_name!r}")
                options = entry.get("parameters") or {}
                if not isinstance(options, dict):
                    raise Refusal(400, "output parameters must be an object")
                binary = bool(options.get("binary_data", binary))
                wanted = options.get("classification")
                if wanted is not None:
                    if type(wanted) is not int or wanted < 0:
                        raise Refusal(400, f"classification must be a non-negative int, got {wanted!r}")
                    k = wanted or None
        if served.reveal == "top-k":  # never more than the server is configured to reveal
            k = min(k or served.top_k, served.top_k)
        return (min(k, served.num_classes) if k else None), binary

    async def _run(self, served: ServedModel, key: ApiKey, videos: torch.Tensor) -> torch.Tensor:
        clips = len(videos)
        try:
            await asyncio.wait_for(self.slots().acquire(), self.limits.queue_timeout)
        except asyncio.TimeoutError:
            raise Refusal(503, "server busy: no inference slot free; retry later", {"Retry-After": "1"}) from None
        try:
            if not self.store.reserve(key.name, served.name, clips, key.budget):
                raise Refusal(429, f"query budget of key {key.name!r} for {served.name!r} is spent ({key.budget} clips)")
            self.metrics.in_flight.inc()
            try:
                return await run_in_threadpool(self._forward, served, videos)
            except Exception as error:
                self.store.refund(key.name, served.name, clips)
                raise Refusal(500, f"the model failed: {type(error).__name__}") from error
            finally:
                self.metrics.in_flight.dec()
        finally:
            self.slots().release()

    def _forward(self, served: ServedModel, videos: torch.Tensor) -> torch.Tensor:
        # One forward per model at a time (modules are not thread-safe); the whole request in one batch,
        # so a client that sends the batches a local oracle would run gets bit-identical logits.
        with self.model_locks[served.name], torch.inference_mode():
            logits = served.model(videos.to(served.device))
        if not isinstance(logits, torch.Tensor) or logits.shape != (len(videos), served.num_classes):
            raise RuntimeError(f"model returned {getattr(logits, 'shape', type(logits))}")
        return logits.detach().float().cpu()

    def _answer(
        self, document: dict[str, Any], served: ServedModel, logits: torch.Tensor, wanted: tuple[int | None, bool]
    ) -> Response:
        k, binary = wanted
        scores = logits if served.reveal == "logits" else torch.softmax(logits, dim=1)
        values = scores.numpy()
        entry: dict[str, Any] = {"name": served.output_name}
        if k is not None:
            array, entry["datatype"] = format_classification(values, k, served.class_names), "BYTES"
        else:
            array, entry["datatype"] = values.astype(np.float32), "FP32"
        head: dict[str, Any] = {"model_name": served.name, "model_version": "1"}
        if isinstance(document.get("id"), str):
            head["id"] = document["id"]
        content, headers = encode_message(head, [("outputs", entry, array, binary)])
        return Response(content, headers=headers)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return _error(error.status_code, str(error.detail), dict(error.headers or {}))


async def _server_error(request: Request, error: Exception) -> Response:
    return _error(500, f"internal error: {type(error).__name__}")


def build_app(
    models: list[ServedModel],
    *,
    keys: list[ApiKey] | None = None,
    store: AuditStore | None = None,
    limits: Limits | None = None,
    anonymous_budget: int | None = None,
) -> Starlette:
    """The ASGI app serving ``models`` (see the module docstring).

    Args:
        models: the models, by their ``name``.
        keys: API keys; ``None`` serves without authentication (only for loopback: the runner refuses
            other addresses), audited under the name ``"anonymous"`` with ``anonymous_budget``.
        store: budgets and audit log (default: in memory).
        limits: request and concurrency limits.

    The app's state (``app.state.server``) exposes ``store`` and ``metrics`` for tests and tools.
    """
    if not models:
        raise ValueError("models must name at least one model")
    if anonymous_budget is not None and anonymous_budget < 0:
        raise ValueError(f"anonymous_budget must be >= 0 or None, got {anonymous_budget}")
    server = _Server(models, keys, store or AuditStore(), limits or Limits(), anonymous_budget)
    model = "/v2/models/{name}"
    versioned = model + "/versions/{version}"
    routes = [
        Route("/v2/health/live", server.live, methods=["GET"]),
        Route("/v2/health/ready", server.ready, methods=["GET"]),
        Route("/v2", server.server_metadata, methods=["GET"]),
        Route(model, server.model_metadata, methods=["GET"]),
        Route(versioned, server.model_metadata, methods=["GET"]),
        Route(model + "/ready", server.model_ready, methods=["GET"]),
        Route(versioned + "/ready", server.model_ready, methods=["GET"]),
        Route(model + "/infer", server.infer, methods=["POST"]),
        Route(versioned + "/infer", server.infer, methods=["POST"]),
        Route("/metrics", server.prometheus, methods=["GET"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error, Exception: _server_error})
    app.state.server = server
    return app
