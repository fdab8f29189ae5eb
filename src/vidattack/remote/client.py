"""RemoteModel: a classifier behind an Open Inference Protocol (KServe v2) endpoint, as a local callable.

:class:`RemoteModel` maps videos ``[N,T,C,H,W]`` in [0, 1] to pseudo-logits ``[N,K]``, so it slots
under :class:`~vidattack.ScoreOracle` and :class:`~vidattack.LabelOracle` like a local model. The oracle
above it counts and caps queries; retries happen inside one call of the model, so a request that failed
and was sent again is still one oracle query per clip.

What the server reveals and what the oracle sees (the softmax of the pseudo-logits):

==============================================  =========================================================
server answer                                   pseudo-logits (softmax gives back)
==============================================  =========================================================
full probabilities ``[N,K]``                    ``log p`` (exactly ``p``)
full logits ``[N,K]``                           the logits (exactly the model's softmax)
classification top-k, probability scores        ``log p`` for the k revealed classes, the unrevealed mass
                                                ``1 - sum`` spread evenly over the others (the revealed
                                                probabilities and their order exactly)
classification top-k, logit scores              the revealed logits, the others 100 below the lowest
                                                (probabilities renormalised over the revealed classes)
a label only (INT tensor ``[N]``)               one-hot: probability 1 for that label
==============================================  =========================================================

Whether float scores are probabilities or logits is taken from ``scores=`` or, with ``"auto"``, from
the output's name (``prob`` / ``logit``) and else from the first answer (non-negative rows that sum
to at most 1 are probabilities), then kept fixed.
"""

from __future__ import annotations

import http.client
import os
import ssl
import threading
import time
from typing import Any, Literal
from urllib.parse import quote

import numpy as np
import torch
from torch import Tensor

from vidattack.remote.protocol import (
    HEADER_LENGTH,
    ProtocolError,
    decode_message,
    encode_message,
    parse_classification,
    parse_model_url,
    strict_json,
)
from vidattack.video import validate_video

__all__ = ["RemoteModel", "RemoteModelError", "is_remote", "API_KEY_ENV", "BEARER_TOKEN_ENV"]

API_KEY_ENV = "VIDATTACK_API_KEY"
BEARER_TOKEN_ENV = "VIDATTACK_BEARER_TOKEN"
# Answers worth sending again: the server was busy or a gateway in front of it failed.
_RETRY_STATUSES = frozenset({502, 503, 504})
_INPUT_TYPES = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "UINT8": np.uint8}
_LOG_FLOOR = float(np.log(1e-30))


class RemoteModelError(RuntimeError):
    """The remote model could not be reached or answered outside the protocol.

    Attributes:
        status: the HTTP status of the answer (``None`` when there was no answer).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def is_remote(reference: str) -> bool:
    """Whether a ``--model`` reference names an HTTP service (``http://`` or ``https://``)."""
    return reference.startswith(("http://", "https://"))


class RemoteModel:
    """A classifier behind an Open Inference Protocol endpoint, as ``videos [N,T,C,H,W] -> [N,K]``.

    Args:
        url: the model's v2 URL, ``http(s)://HOST[:PORT][/PREFIX]/v2/models/NAME[/versions/V]``.
        api_key: sent as ``api_key_header`` (default from the ``VIDATTACK_API_KEY`` variable).
        bearer_token: sent as ``Authorization: Bearer ...`` (default from ``VIDATTACK_BEARER_TOKEN``).
        api_key_header: the header that carries ``api_key``.
        ca_bundle: a PEM file of CA certificates to verify an ``https`` server with (default: the
            system's). Certificates and host names are always verified.
        timeout: seconds for connecting and for each answer.
        retries: how many times a request is sent again after a connection failure, a timeout or a
            502/503/504 answer (0..10). The oracle above counts one query per clip whatever happens here.
        backoff: seconds before the first retry, doubled for each next one (at most 10 s each).
        binary: send the clips with the binary tensor data extension (else as JSON numbers).
        top_k: ask for the classification extension's top-k labels instead of the full output.
        scores: how to read float scores: ``"probabilities"``, ``"logits"`` or ``"auto"`` (above).
        layout: ``"NTCHW"`` (vidattack's) or ``"NCTHW"`` (channels before frames, as many 3D CNNs).
        input_name, output_name: which tensors to use (default: the first of each in the metadata).
        num_classes: K, when the metadata does not say it (an output shape ``[-1, K]``).
        batch_size: most clips per request (default: the server's ``max_clips_per_request`` or 16).

    Attributes:
        num_classes, num_frames, input_size, class_names: from the model's metadata.
        black_box_only: always True; white-box methods are refused for remote models.

    Raises:
        ValueError: a bad argument (the message names it).
        RemoteModelError: the model is unreachable, not ready, or its metadata is not usable.
    """

    black_box_only = True

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None = None,
        bearer_token: str | None = None,
        api_key_header: str = "X-API-Key",
        ca_bundle: str | None = None,
        timeout: float = 30.0,
        retries: int = 2,
        backoff: float = 0.5,
        binary: bool = True,
        top_k: int | None = None,
        scores: Literal["auto", "probabilities", "logits"] = "auto",
        layout: Literal["NTCHW", "NCTHW"] = "NTCHW",
        input_name: str | None = None,
        output_name: str | None = None,
        num_classes: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        if not is_remote(url):
            raise ValueError(f"url must start with http:// or https://, got {url!r}")
        base, prefix, name, version = parse_model_url(url)
        if not (isinstance(retries, int) and 0 <= retries <= 10):
            raise ValueError(f"retries must be an int in 0..10, got {retries!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
        if scores not in ("auto", "probabilities", "logits"):
            raise ValueError(f"scores must be 'auto', 'probabilities' or 'logits', got {scores!r}")
        if layout not in ("NTCHW", "NCTHW"):
            raise ValueError(f"layout must be 'NTCHW' or 'NCTHW', got {layout!r}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if ca_bundle is not None and not os.path.isfile(ca_bundle):
            raise ValueError(f"ca_bundle must be a PEM file, got {ca_bundle!r} (not found)")
        self.url = url.rstrip("/")
        self.model_name = name
        self._secure = base.startswith("https://")
        self._netloc = base.split("://", 1)[1]
        self._model_path = f"{prefix}/v2/models/{quote(name, safe='')}" + (
            f"/versions/{quote(version, safe='')}" if version else ""
        )
        self._health_path = f"{prefix}/v2/health/ready"
        self.timeout, self.retries, self.backoff = float(timeout), retries, float(backoff)
        self.binary, self.top_k, self.layout = binary, top_k, layout
        self._scores = scores
        self._ca_bundle = ca_bundle
        # Credentials live only in this header dict: never in repr, messages or logs.
        self._auth: dict[str, str] = {}
        api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or None
        bearer_token = bearer_token if bearer_token is not None else os.environ.get(BEARER_TOKEN_ENV) or None
        if api_key:
            self._auth[api_key_header] = api_key
        if bearer_token:
            self._auth["Authorization"] = f"Bearer {bearer_token}"
        if self._auth and not self._secure and not _is_loopback(self._netloc):
            # Not refused (a trusted network may carry plain HTTP), but the user should know.
            import warnings

            warnings.warn(f"sending credentials over plain http to {self._netloc}; use https", stacklevel=2)
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None
        self.requests_sent = 0  # HTTP requests including retries (the oracle counts queries)
        self._read_metadata(input_name, output_name, num_classes, batch_size)

    def __repr__(self) -> str:
        return f"RemoteModel({self.url!r})"

    # --- metadata ---------------------------------------------------------------------------------
    def _read_metadata(
        self, input_name: str | None, output_name: str | None, num_classes: int | None, batch_size: int | None
    ) -> None:
        status, _, body = self._exchange("GET", self._model_path + "/ready", None, {})
        if status != 200:
            raise RemoteModelError(f"{self.url} is not ready (HTTP {status}): {_detail(body)}", status)
        status, _, body = self._exchange("GET", self._model_path, None, {})
        if status != 200:
            raise RemoteModelError(f"{self.url} metadata: HTTP {status}: {_detail(body)}", status)
        try:
            metadata = strict_json(body, "model metadata")
            inputs, outputs = metadata["inputs"], metadata["outputs"]
            entry = _pick(inputs, input_name, "input")
            output = _pick(outputs, output_name, "output")
        except (ProtocolError, KeyError, TypeError) as error:
            raise RemoteModelError(f"{self.url} metadata is not usable: {error}") from None
        self.metadata = metadata
        self.input_name, self.input_datatype = str(entry["name"]), str(entry.get("datatype"))
        if self.input_datatype not in _INPUT_TYPES:
            raise RemoteModelError(f"{self.url} wants {self.input_datatype} input; supported: {sorted(_INPUT_TYPES)}")
        shape = list(entry.get("shape") or [])
        if len(shape) not in (4, 5):
            raise RemoteModelError(f"{self.url} input shape {shape} is not a video clip (4 or 5 dims)")
        self._batched = len(shape) == 5
        clip = shape[-4:]
        frames, channels, height, width = (
            (clip[0], clip[1], clip[2], clip[3]) if self.layout == "NTCHW" else (clip[1], clip[0], clip[2], clip[3])
        )
        self.num_frames = frames if isinstance(frames, int) and frames > 0 else None
        self.num_channels = channels if isinstance(channels, int) and channels > 0 else None
        self.input_size = (height, width) if all(isinstance(s, int) and s > 0 for s in (height, width)) else None
        self.output_name, self.output_datatype = str(output["name"]), str(output.get("datatype"))
        out_shape = list(output.get("shape") or [])
        declared = out_shape[-1] if out_shape and isinstance(out_shape[-1], int) and out_shape[-1] > 0 else None
        self.num_classes = int(num_classes or declared or 0)
        if self.num_classes < 1:
            raise RemoteModelError(f"{self.url} does not declare its number of classes; pass num_classes")
        parameters = metadata.get("parameters") or {}
        names = parameters.get("class_names")
        self.class_names = list(names) if isinstance(names, list) else list(range(self.num_classes))
        if self._scores == "auto":
            lowered = self.output_name.lower()
            self._scores = "probabilities" if "prob" in lowered else "logits" if "logit" in lowered else "auto"
        server_max = parameters.get("max_clips_per_request")
        self.batch_size = batch_size or (int(server_max) if isinstance(server_max, int) and server_max > 0 else 16)
        if not self._batched:
            self.batch_size = 1

    # --- HTTP -------------------------------------------------------------------------------------
    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            if self._secure:
                context = ssl.create_default_context(cafile=self._ca_bundle)
                self._connection = http.client.HTTPSConnection(self._netloc, timeout=self.timeout, context=context)
            else:
                self._connection = http.client.HTTPConnection(self._netloc, timeout=self.timeout)
        return self._connection

    def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _exchange(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """One request with bounded retries; returns the last answer's status, headers and body."""
        attempts = self.retries + 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            with self._lock:
                try:
                    connection = self._connect()
                    self.requests_sent += 1
                    connection.request(method, path, body=body, headers={**headers, **self._auth})
                    response = connection.getresponse()
                    payload = response.read()
                    answer = response.status, {k.lower(): v for k, v in response.getheaders()}, payload
                    if answer[1].get("connection", "").lower() == "close":
                        self._drop_connection()
                except ssl.SSLCertVerificationError as error:
                    self._drop_connection()
                    raise RemoteModelError(f"TLS certificate of {self._netloc} not trusted: {error.verify_message}") from None
                except (OSError, http.client.HTTPException) as error:
                    # A kept-alive connection the server closed, a refused connection or a timeout.
                    self._drop_connection()
                    if last:
                        raise RemoteModelError(
                            f"cannot reach the remote model at {self.url} after {attempts} attempt(s): "
                            f"{type(error).__name__}: {error}"
                        ) from None
                    answer = None
            if answer is not None and (answer[0] not in _RETRY_STATUSES or last):
                return answer
            time.sleep(min(self.backoff * 2**attempt, 10.0))
        raise AssertionError("unreachable")  # the loop returns or raises on its last attempt

    # --- inference --------------------------------------------------------------------------------
    def __call__(self, videos: Tensor) -> Tensor:
        """Pseudo-logits ``[N, K]`` of ``videos [N,T,C,H,W]`` in [0, 1] (mapping: module docstring)."""
        if videos.requires_grad and torch.is_grad_enabled():
            raise ValueError("a remote model gives no gradients: use a black-box (scores or labels) method")
        validate_video(videos, "videos")
        rows = [self._infer(videos[start : start + self.batch_size]) for start in range(0, len(videos), self.batch_size)]
        return torch.cat(rows).to(videos.device)

    def _infer(self, videos: Tensor) -> Tensor:
        array = videos.detach().to("cpu", torch.float64).numpy()
        if self.layout == "NCTHW":
            array = array.transpose(0, 2, 1, 3, 4)
        if self.input_datatype == "UINT8":
            array = np.rint(array * 255.0)  # the server takes 8-bit pixels: the clip is quantised
        array = array.astype(_INPUT_TYPES[self.input_datatype])
        if not self._batched:
            array = array[0]
        wanted: dict[str, Any] = {"name": self.output_name, "parameters": {"binary_data": self.binary}}
        if self.top_k is not None:
            wanted["parameters"]["classification"] = self.top_k
        entry = {"name": self.input_name, "datatype": self.input_datatype}
        body, headers = encode_message({"outputs": [wanted]}, [("inputs", entry, array, self.binary)])
        status, answer_headers, payload = self._exchange("POST", self._model_path + "/infer", body, headers)
        if status != 200:
            raise RemoteModelError(f"{self.url}/infer answered HTTP {status}: {_detail(payload)}", status)
        try:
            _, arrays = decode_message(payload, answer_headers.get(HEADER_LENGTH.lower()), "outputs")
            output = arrays[self.output_name] if self.output_name in arrays else next(iter(arrays.values()))
        except (ProtocolError, StopIteration) as error:
            raise RemoteModelError(f"{self.url}/infer answered outside the protocol: {error}") from None
        return self._pseudo_logits(output, len(videos))

    def _pseudo_logits(self, output: np.ndarray, n: int) -> Tensor:
        k = self.num_classes
        if output.dtype == object:  # the classification extension: "score:index[:label]" strings
            try:
                scores, indices = parse_classification(output.reshape(n, -1))
            except (ProtocolError, ValueError) as error:
                raise RemoteModelError(f"{self.url}/infer: {error}") from None
            if indices.min() < 0 or indices.max() >= k:
                raise RemoteModelError(f"{self.url}/infer answered a class outside [0, {k - 1}]")
            return self._from_top_k(scores, indices, n)
        if output.dtype.kind in "iub":  # labels only
            labels = torch.from_numpy(output.reshape(n).astype(np.int64))
            if labels.min() < 0 or labels.max() >= k:
                raise RemoteModelError(f"{self.url}/infer answered a class outside [0, {k - 1}]")
            full = torch.full((n, k), _LOG_FLOOR, dtype=torch.float64)
            full[torch.arange(n), labels] = 0.0
            return full.float()
        values = output.astype(np.float64).reshape(n, -1)
        if values.shape[1] != k or not np.isfinite(values).all():
            raise RemoteModelError(f"{self.url}/infer answered shape {values.shape} (finite [N, {k}] expected)")
        if self._scores == "auto":
            self._scores = "probabilities" if _look_like_probabilities(values, full=True) else "logits"
        if self._scores == "logits":
            return torch.from_numpy(values).float()
        return torch.from_numpy(np.log(np.clip(values, 1e-30, None))).float()

    def _from_top_k(self, scores: np.ndarray, indices: np.ndarray, n: int) -> Tensor:
        k = self.num_classes
        if self._scores == "auto":
            self._scores = "probabilities" if _look_like_probabilities(scores, full=False) else "logits"
        scores_t, indices_t = torch.from_numpy(scores), torch.from_numpy(indices)
        if self._scores == "logits":
            floor = scores_t.min(dim=1, keepdim=True).values - 100.0
            full = floor.expand(n, k).clone()
            full.scatter_(1, indices_t, scores_t)
            return full.float()
        hidden = k - indices.shape[1]
        rest = (1.0 - scores_t.sum(dim=1, keepdim=True)).clamp_min(0.0)
        share = rest / hidden if hidden else torch.zeros_like(rest)
        # The floor keeps log() finite when everything was revealed (or the rest rounds to zero).
        full = share.clamp_min(1e-30).expand(n, k).clone()
        full.scatter_(1, indices_t, scores_t.clamp_min(1e-30))
        return full.log().float()

    def close(self) -> None:
        """Close the kept-alive connection (a later call opens a new one)."""
        with self._lock:
            self._drop_connection()

    def __enter__(self) -> RemoteModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        # a client dropped without close() shuts its kept-alive socket itself, rather than leaving it to
        # the collector (which warns about the unclosed socket)
        connection = getattr(self, "_connection", None)
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - nothing to report from a finaliser
                pass


def _look_like_probabilities(values: np.ndarray, *, full: bool) -> bool:
    sums = values.sum(axis=1)
    if (values < 0).any() or (values > 1).any():
        return False
    return bool(np.allclose(sums, 1.0, atol=1e-3)) if full else bool((sums <= 1.0 + 1e-3).all())


def _pick(entries: Any, name: str | None, what: str) -> dict[str, Any]:
    if not isinstance(entries, list) or not entries:
        raise KeyError(f"no {what}s declared")
    if name is None:
        return entries[0]
    for entry in entries:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    raise KeyError(f"no {what} named {name!r}; declared: {[e.get('name') for e in entries if isinstance(e, dict)]}")


def _detail(body: bytes) -> str:
    """The error text of an answer, short (a server's JSON ``error``, else the start of the body)."""
    try:
        document = strict_json(body)
        if isinstance(document, dict) and "error" in document:
            return str(document["error"])[:300]
    except ProtocolError:
        pass
    return body[:300].decode("utf-8", "replace")


def _is_loopback(netloc: str) -> bool:
    host = netloc.rsplit(":", 1)[0].strip("[]") if not netloc.startswith("[") else netloc[1:].split("]")[0]
    return host in ("localhost", "127.0.0.1", "::1") or host.startswith("127.")
