"""Run the app on uvicorn with the connection-level limits an exposed server needs.

uvicorn closes idle kept-alive connections (``timeout_keep_alive``) and caps open connections
(``limit_concurrency``, answering 503 above it), but it waits forever for the request line and headers
of a new connection: one opened and left silent, or fed a byte a second, holds its slot for good. The
protocol class here adds that deadline (``Limits.head_timeout``) and answers such a connection with a
JSON 408 before closing it, so no connection is dropped without an answer. Body deadlines are the
app's (:mod:`vidattack.serving.app`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import threading
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from vidattack.serving.app import Limits

__all__ = ["ServerHandle", "start_server", "run_server", "is_loopback", "uvicorn_config"]


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` answers this machine only (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


class _HeadDeadlineH11(H11Protocol):
    """uvicorn's h11 protocol plus a deadline on receiving each request's line and headers."""

    head_timeout = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # their_state leaves IDLE once a whole request head has been parsed.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        body = json.dumps({"error": f"request line and headers not received within {self.head_timeout:g} s"}).encode()
        head = (
            "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode("ascii")
        self.transport.write(head + body)
        self.transport.close()


def uvicorn_config(app: Any, limits: Limits, *, log_level: str = "warning", access_log: bool = False, **tls: Any) -> uvicorn.Config:
    """The uvicorn configuration that enforces ``limits`` at the connection level."""
    protocol = type("HeadDeadlineH11", (_HeadDeadlineH11,), {"head_timeout": float(limits.head_timeout)})
    return uvicorn.Config(
        app,
        http=protocol,
        lifespan="off",
        timeout_keep_alive=limits.keep_alive,
        limit_concurrency=limits.max_connections,
        h11_max_incomplete_event_size=32 * 2**10,  # request line + headers
        log_level=log_level,
        access_log=access_log,
        server_header=False,
        **tls,
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _check_exposure(host: str, has_keys: bool) -> None:
    if not is_loopback(host) and not has_keys:
        raise ValueError(
            f"refusing to serve on {host!r} without API keys: anyone who can reach it could query the model; "
            "give keys (--api-keys FILE or --api-key-env VAR) or bind 127.0.0.1"
        )


class ServerHandle:
    """A server running in a background thread (for tests and notebooks); ``stop()`` ends it."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, url: str) -> None:
        self._server, self._thread, self.url = server, thread, url

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to exit and wait for its thread (at most ``timeout`` seconds)."""
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(app: Any, host: str = "127.0.0.1", port: int = 0, *, limits: Limits | None = None,
                 startup_timeout: float = 10.0) -> ServerHandle:
    """Serve ``app`` from a daemon thread on ``host:port`` (0: a free port); the handle's ``url`` says where.

    Raises:
        ValueError: a non-loopback ``host`` for an app without API keys.
        RuntimeError: the server did not start within ``startup_timeout`` seconds.
    """
    server_state = getattr(getattr(app, "state", None), "server", None)
    _check_exposure(host, server_state is None or server_state.keys is not None)
    limits = limits or (server_state.limits if server_state is not None else Limits())
    sock = _bind(host, port)
    server = uvicorn.Server(uvicorn_config(app, limits))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="vidattack-serve")
    thread.start()
    deadline = threading.Event()
    for _ in range(int(startup_timeout / 0.02)):
        if server.started or not thread.is_alive():
            break
        deadline.wait(0.02)
    if not server.started:
        server.should_exit = True
        raise RuntimeError("the server did not start")
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return ServerHandle(server, thread, f"http://{shown}:{bound_port}")


def run_server(app: Any, host: str, port: int, *, limits: Limits, ssl_certfile: str | None = None,
               ssl_keyfile: str | None = None, log_level: str = "info") -> None:
    """Serve ``app`` in the foreground until Ctrl-C (uvicorn handles the signals)."""
    server_state = getattr(getattr(app, "state", None), "server", None)
    _check_exposure(host, server_state is None or server_state.keys is not None)
    tls = {"ssl_certfile": ssl_certfile, "ssl_keyfile": ssl_keyfile} if ssl_certfile else {}
    server = uvicorn.Server(uvicorn_config(app, limits, log_level=log_level, access_log=True, **tls))
    server.run(sockets=[_bind(host, port)])
