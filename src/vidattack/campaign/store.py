"""The campaign store: one SQLite file, one committed row per finished item.

Crash safety comes from SQLite itself: each result is inserted in its own transaction, in WAL mode, so
killing the runner at any moment leaves every committed row whole and no half-written one; the
``UNIQUE (campaign, dataset, model, attack, video)`` key makes a duplicate impossible even if two
runners work on the same database. Only the runner's main process writes; workers return rows to it.

Tables:

* ``results`` -- one row per item: identity, status, every scalar of the attack record, metrics, the
  trace (JSON), timing, library version, seed, config hash and the saved video's path.
* ``plan`` -- the items the last run of each campaign expanded to (``status`` reports pending items).
* ``predictions`` -- clean predictions per (data source, model fingerprint, video), so selecting
  correctly classified videos evaluates each model once.
* ``settings`` -- per (campaign, dataset, model, attack) the hash of everything that changes results,
  so a resumed run refuses to mix results of different settings under one name.
* ``campaigns`` -- each campaign's latest config text and hash.
* ``claims`` -- which runner is computing which item, until when (a lease it renews while it runs).
  Runners claim each item just before computing it, so two runners on one database never compute the
  same item; a claim whose lease expired, or whose runner process on this machine is gone (SIGKILL), is
  taken over by the next runner that asks.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from vidattack.io import json_text

__all__ = ["Store", "RESULT_COLUMNS", "METRIC_COLUMNS", "ItemKey", "runner_identity"]


def runner_identity() -> str:
    """``HOST:PID:START``: names a runner in the claims table (unique across restarts of a PID)."""
    return f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"


def _owner_alive(owner: str) -> bool:
    """Whether the runner named ``owner`` may still be running (always ``True`` for another host)."""
    host, _, rest = owner.partition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(rest.split(":")[0]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True

SCHEMA_VERSION = 1

ItemKey = tuple[str, str, str, str, int]  # (campaign, dataset, model, attack label, video index)

METRIC_COLUMNS = (
    "linf",
    "l2",
    "l0",
    "map",
    "map_star",
    "frame_sparsity",
    "pixel_sparsity",
    "thickness",
    "roughness",
)

# (name, SQL type) of every result column after the identity.
RESULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("video_id", "TEXT"),
    ("method", "TEXT"),
    ("threat", "TEXT"),
    ("status", "TEXT NOT NULL"),
    ("error", "TEXT"),
    ("label", "INTEGER"),
    ("target", "INTEGER"),
    ("clean_pred", "INTEGER"),
    ("adv_label", "INTEGER"),
    ("success", "INTEGER"),
    ("success_uint8", "INTEGER"),
    ("queries", "INTEGER"),
    ("iterations", "INTEGER"),
    ("seconds", "REAL"),
    ("wall_seconds", "REAL"),
    *((name, "REAL") for name in METRIC_COLUMNS),
    ("eps", "REAL"),
    ("budget", "INTEGER"),
    ("seed", "INTEGER"),
    ("version", "TEXT"),
    ("config_hash", "TEXT"),
    ("settings_hash", "TEXT"),
    ("record", "TEXT"),
    ("trace", "TEXT"),
    ("video_path", "TEXT"),
    ("worker", "TEXT"),
    ("finished_at", "REAL"),
)
_IDENTITY = ("campaign", "dataset", "model", "attack", "video")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS campaigns (
    name TEXT PRIMARY KEY, config_hash TEXT, config_text TEXT, config_path TEXT, updated REAL);
CREATE TABLE IF NOT EXISTS settings (
    campaign TEXT, dataset TEXT, model TEXT, attack TEXT, settings_hash TEXT, description TEXT,
    PRIMARY KEY (campaign, dataset, model, attack));
CREATE TABLE IF NOT EXISTS plan (
    campaign TEXT, dataset TEXT, model TEXT, attack TEXT, video INTEGER,
    PRIMARY KEY (campaign, dataset, model, attack, video));
CREATE TABLE IF NOT EXISTS predictions (
    source_key TEXT, model_key TEXT, video INTEGER, label INTEGER, pred INTEGER,
    PRIMARY KEY (source_key, model_key, video));
CREATE TABLE IF NOT EXISTS claims (
    campaign TEXT, dataset TEXT, model TEXT, attack TEXT, video INTEGER, owner TEXT, expires REAL,
    PRIMARY KEY (campaign, dataset, model, attack, video));
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    campaign TEXT NOT NULL, dataset TEXT NOT NULL, model TEXT NOT NULL, attack TEXT NOT NULL,
    video INTEGER NOT NULL,
    {", ".join(f"{name} {kind}" for name, kind in RESULT_COLUMNS)},
    UNIQUE (campaign, dataset, model, attack, video));
"""


class Store:
    """A campaign database (created on first use).

    Args:
        path: the SQLite file.
        readonly: open an existing database for reading only (status, report); a missing file is an error.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly:
            if not self.path.is_file():
                raise ValueError(f"no campaign database at {self.path}")
            self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        else:
            if self.path.parent and not self.path.parent.exists():
                raise ValueError(f"directory of the database does not exist: {self.path.parent}")
            self.conn = sqlite3.connect(str(self.path), timeout=30)
            # WAL: a killed writer never corrupts committed rows and readers (status) never block it.
            # synchronous=NORMAL keeps every commit across a process kill (only power loss can lose the last).
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            with self.conn:
                self.conn.executescript(_SCHEMA)
                self.conn.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
                )
        self.conn.row_factory = sqlite3.Row
        try:
            version = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as error:
            raise ValueError(f"{self.path} is not a vidattack campaign database ({error})") from None
        if version is None or int(version[0]) != SCHEMA_VERSION:
            raise ValueError(
                f"{self.path}: campaign database schema {version and version[0]} is not {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- campaigns and settings ------------------------------------------------------------------

    def register_campaign(self, name: str, config_hash: str, config_text: str, config_path: str) -> None:
        """Remember the campaign's latest config."""
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO campaigns VALUES (?, ?, ?, ?, ?)",
                (name, config_hash, config_text, config_path, time.time()),
            )

    def campaigns(self) -> list[str]:
        """Names of the campaigns with a plan or results, sorted."""
        rows = self.conn.execute(
            "SELECT name FROM campaigns UNION SELECT DISTINCT campaign FROM results"
        ).fetchall()
        return sorted(row[0] for row in rows)

    def check_settings(self, key: tuple[str, str, str, str], settings_hash: str, description: str) -> None:
        """Record the settings of (campaign, dataset, model, attack); refuse a change once results exist.

        Raises:
            ValueError: results of that (campaign, dataset, model, attack) exist with other settings.
        """
        row = self.conn.execute(
            "SELECT settings_hash, description FROM settings "
            "WHERE campaign=? AND dataset=? AND model=? AND attack=?",
            key,
        ).fetchone()
        if row is not None and row[0] != settings_hash and self._has_results(key):
            campaign, dataset, model, attack = key
            raise ValueError(
                f"{self.path} already holds results of campaign {campaign!r} for model {model!r} and attack "
                f"{attack!r} on {dataset} made with other settings ({row[1]} -> now {description}); "
                "use another "
                "--db, campaign name or attack label"
            )
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO settings VALUES (?, ?, ?, ?, ?, ?)",
                (*key, settings_hash, description),
            )

    def _has_results(self, key: tuple[str, str, str, str]) -> bool:
        return (
            self.conn.execute(
                "SELECT 1 FROM results WHERE campaign=? AND dataset=? AND model=? AND attack=? LIMIT 1", key
            ).fetchone()
            is not None
        )

    # -- plan ------------------------------------------------------------------------------------

    def set_plan(self, campaign: str, keys: Iterable[ItemKey]) -> None:
        """Replace ``campaign``'s plan with ``keys`` (one transaction)."""
        with self.conn:
            self.conn.execute("DELETE FROM plan WHERE campaign = ?", (campaign,))
            self.conn.executemany("INSERT OR IGNORE INTO plan VALUES (?, ?, ?, ?, ?)", list(keys))

    def done_keys(self, campaign: str) -> set[ItemKey]:
        """Identities of the items of ``campaign`` that have a row (finished or errored)."""
        rows = self.conn.execute(
            "SELECT campaign, dataset, model, attack, video FROM results WHERE campaign = ?", (campaign,)
        ).fetchall()
        return {tuple(row) for row in rows}  # type: ignore[misc]

    def delete_errors(self, campaign: str) -> int:
        """Forget ``campaign``'s errored items so that the next run retries them; returns how many."""
        with self.conn:
            cursor = self.conn.execute(
                "DELETE FROM results WHERE campaign = ? AND status = 'error'", (campaign,)
            )
        return cursor.rowcount

    # -- claims ----------------------------------------------------------------------------------

    def claim(self, key: ItemKey, owner: str, lease: float) -> bool:
        """Claim ``key`` for ``owner`` for ``lease`` seconds; ``False`` when it has a row already, or a live
        claim of another runner (one whose lease has not expired and whose process is not known dead)."""
        now = time.time()
        # BEGIN IMMEDIATE takes the write lock first, so two runners cannot both see the item free.
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if self.conn.execute(
                "SELECT 1 FROM results WHERE campaign=? AND dataset=? AND model=? AND attack=? AND video=?", key
            ).fetchone():
                self.conn.execute("COMMIT")
                return False
            held = self.conn.execute(
                "SELECT owner, expires FROM claims WHERE campaign=? AND dataset=? AND model=? AND attack=? "
                "AND video=?",
                key,
            ).fetchone()
            if held is not None and held[0] != owner and held[1] > now and _owner_alive(held[0]):
                self.conn.execute("COMMIT")
                return False
            self.conn.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?, ?, ?)", (*key, owner, now + lease))
            self.conn.execute("COMMIT")
            return True
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def renew_claims(self, owner: str, lease: float) -> None:
        """Extend every claim of ``owner`` by ``lease`` seconds from now (the runner's heartbeat)."""
        with self.conn:
            self.conn.execute("UPDATE claims SET expires = ? WHERE owner = ?", (time.time() + lease, owner))

    def release(self, key: ItemKey, owner: str) -> None:
        """Drop ``owner``'s claim on ``key`` (its row is stored, or it was not started)."""
        with self.conn:
            self.conn.execute(
                "DELETE FROM claims WHERE campaign=? AND dataset=? AND model=? AND attack=? AND video=? AND owner=?",
                (*key, owner),
            )

    # -- clean predictions -----------------------------------------------------------------------

    def predictions(self, source_key: str, model_key: str) -> dict[int, tuple[int, int]]:
        """Cached clean ``{video: (label, prediction)}`` of a model on a data source."""
        rows = self.conn.execute(
            "SELECT video, label, pred FROM predictions WHERE source_key = ? AND model_key = ?",
            (source_key, model_key),
        ).fetchall()
        return {int(row[0]): (int(row[1]), int(row[2])) for row in rows}

    def add_predictions(
        self, source_key: str, model_key: str, entries: Sequence[tuple[int, int, int]]
    ) -> None:
        """Cache clean predictions ``(video, label, prediction)``."""
        with self.conn:
            self.conn.executemany(
                "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?)",
                [(source_key, model_key, int(v), int(lab), int(p)) for v, lab, p in entries],
            )

    # -- results ---------------------------------------------------------------------------------

    def insert_result(self, row: dict[str, Any]) -> bool:
        """Commit one item's row; ``False`` when a row with that identity already exists (kept as is)."""
        names = list(_IDENTITY) + [name for name, _ in RESULT_COLUMNS]
        values = [_sql_value(row.get(name)) for name in names]
        with self.conn:
            cursor = self.conn.execute(
                f"INSERT OR IGNORE INTO results ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                values,
            )
        return cursor.rowcount == 1

    def rows(self, campaign: str | None = None) -> list[dict[str, Any]]:
        """All result rows (of one campaign or all), as dicts, in insertion order."""
        if campaign is None:
            cursor = self.conn.execute("SELECT * FROM results ORDER BY id")
        else:
            cursor = self.conn.execute("SELECT * FROM results WHERE campaign = ? ORDER BY id", (campaign,))
        return [dict(row) for row in cursor.fetchall()]

    def progress(self, campaign: str | None = None) -> list[dict[str, Any]]:
        """Per (campaign, dataset, model, attack): ``planned``, ``done``, ``failed`` (errors), ``pending``."""
        where = "" if campaign is None else "WHERE p.campaign = ?"
        args: tuple[Any, ...] = () if campaign is None else (campaign,)
        query = f"""
            SELECT p.campaign, p.dataset, p.model, p.attack, COUNT(*) AS planned,
                   SUM(r.id IS NOT NULL AND r.status != 'error') AS done,
                   SUM(r.status = 'error') AS failed,
                   SUM(r.id IS NULL) AS pending
            FROM plan p LEFT JOIN results r
              ON r.campaign = p.campaign AND r.dataset = p.dataset AND r.model = p.model
             AND r.attack = p.attack AND r.video = p.video
            {where}
            GROUP BY p.campaign, p.dataset, p.model, p.attack
            ORDER BY p.campaign, p.dataset, MIN(p.rowid)"""
        return [dict(row) for row in self.conn.execute(query, args).fetchall()]


def _sql_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list, tuple)):
        return json_text(value)
    return value
