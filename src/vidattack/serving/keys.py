"""API keys of ``vidattack serve``: who may query, and how many clips each may have classified.

Keys are kept only as SHA-256 digests; the plain key is never stored, logged or echoed. A keys file
is JSON::

    {"keys": [{"name": "red-team", "sha256": "<hex digest of the key>", "budget": 20000},
              {"name": "ci", "key_env": "CI_VIDATTACK_KEY", "budget": null}]}

``sha256`` (preferred), ``key_env`` (the key in an environment variable) or ``key`` (the plain key,
for tests) give the secret; ``budget`` is the most clips the key may have classified per model
(``null``: unlimited).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ApiKey", "digest", "load_keys", "parse_keys"]


@dataclass(frozen=True)
class ApiKey:
    """One key: its public ``name`` (in the audit log), the digest of the secret and its budget."""

    name: str
    sha256: str
    budget: int | None = None

    @classmethod
    def from_secret(cls, name: str, secret: str, budget: int | None = None) -> ApiKey:
        return cls(name=name, sha256=digest(secret), budget=budget)

    def __repr__(self) -> str:  # the digest is not secret, but there is no need to print it either
        return f"ApiKey(name={self.name!r}, budget={self.budget!r})"


def digest(secret: str) -> str:
    """Hex SHA-256 of a key (how keys are compared and kept)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_keys(document: object) -> list[ApiKey]:
    """Keys from a parsed keys file (format above). Raises ``ValueError`` naming the bad entry."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError('keys file must be {"keys": [{"name": ..., "sha256"|"key_env"|"key": ..., "budget": ...}, ...]}')
    keys, names, digests = [], set(), set()
    for index, entry in enumerate(entries):
        where = f"keys[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise ValueError(f"{where} must be an object with a non-empty name")
        budget = entry.get("budget")
        if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < 0):
            raise ValueError(f"{where}.budget must be a non-negative int or null, got {budget!r}")
        if isinstance(entry.get("sha256"), str) and len(entry["sha256"]) == 64:
            hashed = entry["sha256"].lower()
        elif isinstance(entry.get("key_env"), str):
            secret = os.environ.get(entry["key_env"])
            if not secret:
                raise ValueError(f"{where}.key_env: environment variable {entry['key_env']} is not set")
            hashed = digest(secret)
        elif isinstance(entry.get("key"), str) and entry["key"]:
            hashed = digest(entry["key"])
        else:
            raise ValueError(f"{where} needs sha256 (64 hex digits), key_env or key")
        if entry["name"] in names or hashed in digests:
            raise ValueError(f"{where}: name or key used twice")
        names.add(entry["name"])
        digests.add(hashed)
        keys.append(ApiKey(entry["name"], hashed, budget))
    return keys


def load_keys(path: str | Path) -> list[ApiKey]:
    """Keys from a JSON keys file (format above)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read keys file {path}: {error}") from None
    return parse_keys(document)
