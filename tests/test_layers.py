"""The import layers of the package, checked on the source (README "Architecture").

Every module under ``src/vidattack`` is parsed with :mod:`ast`; every ``import`` in it, also inside
functions, must go to a layer the importer may use, and no cycle may run between modules. The rules:

    L5  cli                                   Typer signatures and printing
    L4  evaluation, campaign, experiments,    robustness evaluation, artifacts, diagnostics; campaigns,
        serving                               universal experiments; the model server
    L3  methods                               methods by name: specs, typed parameters, presets,
                                              attacker data, model references, one attack's record
    L2  attacks                               one paper's algorithm per module
    L1  estimators, priors, data, models,     building blocks (priors take modules, never zoo names),
        remote, viz                           data sets and test beds, architectures, plots
    L0  core: the package root, video,        shared types, files, frame sampling, clip selection,
        threat, result, perturbation,         stable names
        metrics, io, physical, sampling,
        selection, naming

A module may import its own layer and the layers below, with four narrower rules: ``attacks`` only
imports L0, ``estimators`` and ``priors`` (never data, models, plots or anything above); ``estimators``
and ``priors`` import only L0 (and estimators); ``campaign`` imports nothing of L4 (the evaluations and
experiments build on it, so it sits at the bottom of L4); L0 modules import only L0.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "vidattack"

#: The first name below ``vidattack`` -> its layer.
LAYERS: dict[str, int] = {
    "": 0, "video": 0, "threat": 0, "result": 0, "perturbation": 0, "metrics": 0, "io": 0, "physical": 0,
    "sampling": 0, "selection": 0, "naming": 0, "curves": 0, "forward_count": 0,
    "estimators": 1, "priors": 1, "data": 1, "models": 1, "remote": 1, "viz": 1, "batching": 1,
    "attacks": 2,
    "methods": 3,
    "evaluation": 4, "campaign": 4, "experiments": 4, "serving": 4,
    "cli": 5,
}  # fmt: skip

#: Narrower rules: importer group -> the groups it may import (in addition to itself).
ALLOWED: dict[str, set[str]] = {
    "attacks": {g for g, layer in LAYERS.items() if layer == 0} | {"estimators", "priors"},
    "estimators": {g for g, layer in LAYERS.items() if layer == 0},
    "priors": {g for g, layer in LAYERS.items() if layer == 0} | {"estimators"},
    "campaign": {g for g, layer in LAYERS.items() if layer <= 3},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def group_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports_of(path: Path, module: str) -> list[tuple[str, int]]:
    """``(imported vidattack module, line)`` for every import in ``path``, nested ones included."""
    is_package = path.name == "__init__.py"
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if alias.name.split(".")[0] == PACKAGE]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            # `from vidattack import viz` imports the submodule viz: judge it by the submodule.
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.append((candidate if known_module(candidate) else target, node.lineno))
    return found


def known_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (SRC / relative).with_suffix(".py").exists() or (SRC / relative / "__init__.py").exists()


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((SRC / PACKAGE).rglob("*.py"))}


def violations() -> list[str]:
    """Every import that breaks the layer rules, as ``importer:line -> imported (why)``."""
    problems: list[str] = []
    for module, path in all_modules().items():
        source_group = group_of(module)
        if source_group not in LAYERS:
            problems.append(f"{module}: not in any layer (add it to LAYERS in tests/test_layers.py)")
            continue
        for imported, line in imports_of(path, module):
            target_group = group_of(imported)
            if target_group not in LAYERS:
                problems.append(f"{module}:{line} -> {imported} (unknown module)")
                continue
            if target_group == source_group:
                continue
            allowed = ALLOWED.get(source_group)
            if allowed is not None and target_group not in allowed:
                problems.append(f"{module}:{line} -> {imported} ({source_group} may not import {target_group})")
            elif LAYERS[target_group] > LAYERS[source_group]:
                problems.append(
                    f"{module}:{line} -> {imported} (L{LAYERS[source_group]} {source_group or 'root'} "
                    f"imports L{LAYERS[target_group]} {target_group})"
                )
    return problems


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module in the import graph (Tarjan)."""
    modules = all_modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for imported, _ in imports_of(path, module):
            # importing a package runs its __init__; an __init__ importing its own children is not a cycle
            if imported in modules and imported != module and not imported.startswith(module + "."):
                graph[module].add(imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return found


def test_every_import_respects_the_layers() -> None:
    problems = violations()
    assert not problems, "imports that break the layers:\n" + "\n".join(problems)


def test_no_import_cycles_between_modules() -> None:
    found = cycles()
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_attacks_import_no_data_models_campaign_cli_or_plots() -> None:
    forbidden = ("vidattack.data", "vidattack.models", "vidattack.campaign", "vidattack.cli", "vidattack.viz",
                 "vidattack.methods", "vidattack.evaluation", "vidattack.experiments")
    offending = [
        f"{module} -> {imported}"
        for module, path in all_modules().items()
        if module.startswith("vidattack.attacks")
        for imported, _ in imports_of(path, module)
        if imported.startswith(forbidden)
    ]
    assert not offending, offending


@pytest.mark.parametrize(
    ("importer", "statement", "expected"),
    [
        ("vidattack.attacks.x", "from vidattack.data.synthetic import generate", "attacks may not import data"),
        ("vidattack.attacks.x", "def f():\n    from vidattack import viz", "attacks may not import viz"),
        ("vidattack.io", "from vidattack.models import load", "L0 io imports L1 models"),
        ("vidattack.methods.x", "import vidattack.cli", "L3 methods imports L5 cli"),
        ("vidattack.campaign.x", "from vidattack.evaluation import robustness", "campaign may not import evaluation"),
    ],
)
def test_the_checker_catches_a_forbidden_import(tmp_path: Path, monkeypatch, importer, statement, expected) -> None:
    # A planted module with one forbidden import must be reported (the checker cannot pass vacuously).
    relative = Path(*importer.split(".")).with_suffix(".py")
    planted = tmp_path / relative
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text(statement + "\n")
    (tmp_path / "vidattack" / "viz.py").touch()  # a submodule imported by name must be judged as itself
    monkeypatch.setitem(globals(), "SRC", tmp_path)
    assert any(expected in problem for problem in violations())
