"""Stable names: file-system-safe slugs and content digests (campaign seeds, config hashes)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

__all__ = ["slug", "digest"]


def slug(text: str) -> str:
    """``text`` as a safe file name (letters, digits, ``._-``); names that had to change, or are long,
    get a short hash suffix so that different names never share a file once sanitised."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"
    if cleaned != text or len(cleaned) > 60:
        cleaned = f"{cleaned[:50]}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return cleaned


def digest(value: Any) -> str:
    """SHA-256 (hex) of ``value``'s canonical JSON (sorted keys; other objects by ``str``)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
