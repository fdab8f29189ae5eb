"""The server's budgets and audit log, in SQLite (one file survives restarts, so budgets do too).

* ``usage(key, model, clips, requests)``: clips charged per key and model; the budget check and the
  charge are one ``UPDATE ... WHERE clips + n <= budget``, so concurrent requests cannot overspend.
* ``audit(ts, key, model, clips, status, detail)``: one row per inference request, answered or
  refused, with the HTTP status it got.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

__all__ = ["AuditStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    key TEXT NOT NULL, model TEXT NOT NULL,
    clips INTEGER NOT NULL DEFAULT 0, requests INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key, model));
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, key TEXT NOT NULL, model TEXT NOT NULL,
    clips INTEGER NOT NULL, status INTEGER NOT NULL, detail TEXT NOT NULL DEFAULT '');
"""


class AuditStore:
    """Budgets and audit rows in the SQLite file ``path`` (``":memory:"``: kept in memory only).

    Safe to call from the server's event loop and its worker threads (one lock around one connection;
    every call is a short statement).
    """

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def used(self, key: str, model: str) -> int:
        """Clips charged to ``key`` for ``model`` so far."""
        with self._lock:
            row = self._db.execute("SELECT clips FROM usage WHERE key=? AND model=?", (key, model)).fetchone()
        return int(row[0]) if row else 0

    def reserve(self, key: str, model: str, clips: int, budget: int | None) -> bool:
        """Charge ``clips`` to ``key`` for ``model`` if that stays within ``budget``; False (nothing charged) if not."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO usage (key, model) VALUES (?, ?)", (key, model))
            cursor = self._db.execute(
                "UPDATE usage SET clips = clips + ?, requests = requests + 1 "
                "WHERE key=? AND model=? AND (? IS NULL OR clips + ? <= ?)",
                (clips, key, model, budget, clips, budget),
            )
            return cursor.rowcount == 1

    def refund(self, key: str, model: str, clips: int) -> None:
        """Give back a reservation whose clips the model did not answer (the model failed)."""
        with self._lock:
            self._db.execute(
                "UPDATE usage SET clips = MAX(clips - ?, 0), requests = MAX(requests - 1, 0) WHERE key=? AND model=?",
                (clips, key, model),
            )

    def record(self, key: str, model: str, clips: int, status: int, detail: str = "") -> None:
        """Append one audit row (``detail``: the error text, never a credential)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO audit (ts, key, model, clips, status, detail) VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), key, model, clips, status, detail[:300]),
            )

    def usage(self) -> list[dict[str, object]]:
        """Every (key, model) row: clips and requests charged."""
        with self._lock:
            rows = self._db.execute("SELECT key, model, clips, requests FROM usage ORDER BY key, model").fetchall()
        return [{"key": k, "model": m, "clips": c, "requests": r} for k, m, c, r in rows]

    def audit(self, key: str | None = None) -> list[dict[str, object]]:
        """Audit rows, oldest first (only ``key``'s when given)."""
        query = "SELECT ts, key, model, clips, status, detail FROM audit"
        with self._lock:
            rows = self._db.execute(query + (" WHERE key=? ORDER BY id" if key else " ORDER BY id"), (key,) if key else ()).fetchall()
        return [dict(zip(("ts", "key", "model", "clips", "status", "detail"), row, strict=True)) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
