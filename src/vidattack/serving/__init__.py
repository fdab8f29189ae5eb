"""``vidattack serve``: put models behind the Open Inference Protocol (KServe v2 REST), safely.

A Starlette app on uvicorn (:func:`build_app`, :func:`start_server` / :func:`run_server`) with API keys,
per-key budgets and an audit log in SQLite, request size and clip-shape checks before a body is read,
a clips-per-request cap, head and body deadlines, a concurrency limit, health / readiness / metadata
endpoints and Prometheus metrics. Clients: :class:`vidattack.remote.RemoteModel`, ``tritonclient.http``
or any other Open Inference Protocol client.

Layer: L4 (it loads models from :mod:`vidattack.models`; nothing below imports it).
"""

from vidattack.serving.app import ANONYMOUS, INPUT_NAME, Limits, build_app
from vidattack.serving.keys import ApiKey, digest, load_keys, parse_keys
from vidattack.serving.runner import ServerHandle, is_loopback, run_server, start_server
from vidattack.serving.served import ServedModel
from vidattack.serving.store import AuditStore

__all__ = [
    "ANONYMOUS",
    "INPUT_NAME",
    "ApiKey",
    "AuditStore",
    "Limits",
    "ServedModel",
    "ServerHandle",
    "build_app",
    "digest",
    "is_loopback",
    "load_keys",
    "parse_keys",
    "run_server",
    "start_server",
]
