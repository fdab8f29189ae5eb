"""The README's Python examples run as written (every ```python block, in order, in one namespace)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples() -> None:
    assert len(python_blocks()) >= 2


def test_readme_python_examples_run(capsys) -> None:
    namespace: dict = {"__name__": "readme"}
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - the project's own README
    printed = capsys.readouterr().out
    assert "--attacker-data" in printed  # the refused run printed its reason
    assert namespace["result"].n == 1 and len(namespace["result"].extras) == 1
