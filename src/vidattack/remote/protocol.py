"""The Open Inference Protocol (KServe v2 REST) message formats, shared by the client and the server.

Only what a video classifier needs: tensors in JSON (``"data"``: a row-major list) or with the binary
tensor data extension (the JSON header comes first, its length in the ``Inference-Header-Content-Length``
HTTP header, then each binary tensor's raw little-endian bytes in the order of the tensors that carry a
``binary_data_size`` parameter), and the classification extension (an output requested with
``"parameters": {"classification": k}`` comes back as a ``BYTES`` tensor ``[N, k]`` of strings
``"score:index"`` or ``"score:index:label"``, best first).

Everything here is pure: bytes and dicts in, NumPy arrays out. Errors are :class:`ProtocolError`
(a ``ValueError``) whose message names the field that is wrong.
"""

from __future__ import annotations

import json
import math
import re
import struct
from typing import Any

import numpy as np

__all__ = [
    "DATATYPES",
    "HEADER_LENGTH",
    "ProtocolError",
    "strict_json",
    "element_count",
    "tensor_from_json",
    "tensor_from_bytes",
    "tensor_to_bytes",
    "encode_message",
    "decode_message",
    "format_classification",
    "parse_classification",
    "parse_model_url",
]

HEADER_LENGTH = "Inference-Header-Content-Length"

# Datatype names of the protocol and their little-endian NumPy types (BYTES is handled apart).
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}

_MODEL_PATH = re.compile(r"^(?P<prefix>.*?)/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?/?$")


class ProtocolError(ValueError):
    """A message does not follow the protocol; the text says which field and why."""


def _reject_constant(name: str) -> float:
    raise ProtocolError(f"JSON must not contain {name}: the protocol has no non-finite numbers")


def strict_json(text: bytes | str, what: str = "body") -> Any:
    """``json.loads`` that refuses ``NaN`` / ``Infinity`` (not JSON, but Python's parser accepts them)."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ProtocolError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise ProtocolError(f"{what} is not valid JSON: {error}") from None


def element_count(shape: list[int] | tuple[int, ...]) -> int:
    """Number of elements of a tensor of ``shape`` (all dimensions must be non-negative ints)."""
    count = 1
    for size in shape:
        count *= int(size)
    return count


def _check_shape(entry: dict[str, Any], where: str) -> list[int]:
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise ProtocolError(f"{where}.shape must be a list of non-negative ints, got {shape!r}")
    return shape


def tensor_from_json(entry: dict[str, Any], where: str = "tensor") -> np.ndarray:
    """The array of a tensor given inline (``"data"``), checked against its ``shape`` and ``datatype``."""
    shape = _check_shape(entry, where)
    datatype = entry.get("datatype")
    data = entry.get("data")
    if datatype == "BYTES":
        flat = np.asarray(data, dtype=object).reshape(-1) if isinstance(data, list) else None
        if flat is None or flat.size != element_count(shape) or not all(isinstance(x, str) for x in flat):
            raise ProtocolError(f"{where}.data must be {element_count(shape)} strings for BYTES")
        return np.array([x.encode("utf-8") for x in flat], dtype=object).reshape(shape)
    if datatype not in DATATYPES:
        raise ProtocolError(f"{where}.datatype must be one of {sorted(DATATYPES)} or BYTES, got {datatype!r}")
    if not isinstance(data, list):
        raise ProtocolError(f"{where}.data must be a list of numbers, got {type(data).__name__}")
    try:
        raw = np.asarray(data)
    except ValueError:
        raise ProtocolError(f"{where}.data is a ragged list") from None
    expected = "b" if datatype == "BOOL" else "biu" if datatype.startswith(("INT", "UINT")) else "biuf"
    if raw.size and raw.dtype.kind not in expected:
        raise ProtocolError(f"{where}.data holds {raw.dtype.kind!r}-kind values, not {datatype} numbers")
    if raw.dtype.kind == "b" and datatype != "BOOL" and raw.size:
        raise ProtocolError(f"{where}.data holds booleans, not {datatype} numbers")
    if raw.size != element_count(shape):
        raise ProtocolError(f"{where}.data has {raw.size} values but shape {shape} needs {element_count(shape)}")
    return raw.astype(DATATYPES[datatype]).reshape(shape)


def tensor_from_bytes(entry: dict[str, Any], raw: bytes, where: str = "tensor") -> np.ndarray:
    """The array of a tensor sent with the binary extension (``raw``: its little-endian bytes)."""
    shape = _check_shape(entry, where)
    datatype = entry.get("datatype")
    if datatype == "BYTES":
        items, offset = [], 0
        while offset < len(raw):
            if offset + 4 > len(raw):
                raise ProtocolError(f"{where}: truncated BYTES element length")
            (length,) = struct.unpack_from("<I", raw, offset)
            offset += 4
            if offset + length > len(raw):
                raise ProtocolError(f"{where}: truncated BYTES element")
            items.append(bytes(raw[offset : offset + length]))
            offset += length
        if len(items) != element_count(shape):
            raise ProtocolError(f"{where}: {len(items)} BYTES elements but shape {shape}")
        return np.array(items, dtype=object).reshape(shape)
    if datatype not in DATATYPES:
        raise ProtocolError(f"{where}.datatype must be one of {sorted(DATATYPES)} or BYTES, got {datatype!r}")
    dtype = DATATYPES[datatype]
    if len(raw) != element_count(shape) * dtype.itemsize:
        raise ProtocolError(
            f"{where}: {len(raw)} binary bytes but shape {shape} of {datatype} needs {element_count(shape) * dtype.itemsize}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def tensor_to_bytes(array: np.ndarray, datatype: str) -> bytes:
    """The binary-extension bytes of ``array`` as ``datatype`` (little-endian; BYTES length-prefixed)."""
    if datatype == "BYTES":
        parts = []
        for item in np.asarray(array, dtype=object).reshape(-1):
            data = item if isinstance(item, bytes) else str(item).encode("utf-8")
            parts.append(struct.pack("<I", len(data)) + data)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=DATATYPES[datatype]).tobytes()


def _tensor_json(array: np.ndarray, datatype: str) -> list[Any]:
    if datatype == "BYTES":
        return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in np.asarray(array, dtype=object).reshape(-1)]
    return np.asarray(array).reshape(-1).tolist()


def encode_message(
    document: dict[str, Any], tensors: list[tuple[str, dict[str, Any], np.ndarray, bool]]
) -> tuple[bytes, dict[str, str]]:
    """Body and HTTP headers of a request or response.

    Args:
        document: the message without its tensors (e.g. ``{"id": ..., "outputs": [...]}``).
        tensors: ``(key, entry, array, binary)`` per tensor: ``entry`` (``name``, ``datatype``, optional
            ``parameters``) is appended to ``document[key]`` with its ``shape``, and the data goes
            inline (``binary`` False) or after the JSON header (``binary`` True).

    Returns:
        ``(body, headers)``; ``headers`` holds ``Content-Type`` and, when a tensor is binary,
        ``Inference-Header-Content-Length``.
    """
    message = dict(document)
    tail = []
    for key, entry, array, binary in tensors:
        item = {**entry, "shape": list(np.shape(array))}
        if binary:
            raw = tensor_to_bytes(array, entry["datatype"])
            item["parameters"] = {**(entry.get("parameters") or {}), "binary_data_size": len(raw)}
            tail.append(raw)
        else:
            item["data"] = _tensor_json(array, entry["datatype"])
        message.setdefault(key, []).append(item)
    header = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if not tail:
        return header, {"Content-Type": "application/json"}
    return header + b"".join(tail), {
        "Content-Type": "application/octet-stream",
        HEADER_LENGTH: str(len(header)),
    }


def decode_message(body: bytes, header_length: str | int | None, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON document and the arrays of ``document[key]`` (``"inputs"`` or ``"outputs"``) of a message."""
    if header_length is None:
        header, tail = body, b""
    else:
        try:
            size = int(header_length)
        except (TypeError, ValueError):
            raise ProtocolError(f"{HEADER_LENGTH} must be an int, got {header_length!r}") from None
        if not 0 <= size <= len(body):
            raise ProtocolError(f"{HEADER_LENGTH} {size} is outside the body of {len(body)} bytes")
        header, tail = body[:size], body[size:]
    document = strict_json(header, "message header")
    if not isinstance(document, dict) or not isinstance(document.get(key), list):
        raise ProtocolError(f"message must be a JSON object with a {key!r} list")
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for index, entry in enumerate(document[key]):
        where = f"{key}[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ProtocolError(f"{where} must be an object with a name")
        size = (entry.get("parameters") or {}).get("binary_data_size")
        if size is None:
            arrays[entry["name"]] = tensor_from_json(entry, where)
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(tail):
            raise ProtocolError(f"{where}.parameters.binary_data_size {size!r} runs past the body")
        arrays[entry["name"]] = tensor_from_bytes(entry, tail[offset : offset + size], where)
        offset += size
    if offset != len(tail):
        raise ProtocolError(f"{len(tail) - offset} binary bytes after the last tensor")
    return document, arrays


def format_classification(scores: np.ndarray, k: int, class_names: list[str] | None = None) -> np.ndarray:
    """The classification extension's ``[N, k]`` BYTES tensor of ``scores [N, K]``: ``"score:index[:label]"``."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    rows = []
    for row, indices in zip(scores, order, strict=True):
        items = []
        for index in indices:
            text = f"{float(row[index])!r}:{int(index)}"
            if class_names:
                text += f":{class_names[int(index)]}"
            items.append(text.encode("utf-8"))
        rows.append(items)
    return np.array(rows, dtype=object).reshape(len(scores), min(k, scores.shape[1]))


def parse_classification(array: np.ndarray, where: str = "output") -> tuple[np.ndarray, np.ndarray]:
    """``(scores float64 [N, k], indices int64 [N, k])`` of a classification-extension tensor."""
    if array.ndim == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        raise ProtocolError(f"{where}: classification output must be [N, k], got shape {array.shape}")
    scores = np.empty(array.shape, dtype=np.float64)
    indices = np.empty(array.shape, dtype=np.int64)
    for position, item in np.ndenumerate(array):
        text = item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)
        parts = text.split(":", 2)
        try:
            scores[position], indices[position] = float(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            raise ProtocolError(f"{where}: classification entry {text[:60]!r} is not 'score:index[:label]'") from None
        if not math.isfinite(scores[position]):
            raise ProtocolError(f"{where}: classification score {parts[0]!r} is not finite")
    return scores, indices


def parse_model_url(url: str) -> tuple[str, str, str, str | None]:
    """Split a model's v2 URL into ``(base, path_prefix, model_name, version)``.

    ``http://host:8080/v2/models/c3d-synth`` gives ``("http://host:8080", "", "c3d-synth", None)``;
    a gateway prefix (``https://host/ns/svc/v2/models/m/versions/2``) is kept in ``path_prefix``.

    Raises:
        ValueError: not an ``http(s)://`` URL ending in ``/v2/models/NAME[/versions/V]``.
    """
    match = re.match(r"^(?P<base>https?://[^/?#]+)(?P<path>/[^?#]*)?$", url)
    path_match = _MODEL_PATH.match(match.group("path") or "") if match else None
    if match is None or path_match is None:
        raise ValueError(
            f"url must be a model's Open Inference Protocol URL, http(s)://HOST[:PORT]/v2/models/NAME, got {url!r}"
        )
    return match.group("base"), path_match.group("prefix"), path_match.group("name"), path_match.group("version")
