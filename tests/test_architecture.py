"""The import direction of the package layers (DESIGN.md) and a fast, compile-free import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "lowdisp"

# Rank of each layer; a module may import only from layers of lower rank, or
# from its own layer. orthogonal and spectral share a rank but may not import
# each other; testing is imported by nothing inside the package.
BASE = {"_validation", "_config", "exceptions", "_typing", "_cliargs"}
RANK = {
    "base": 0,
    "kernels": 1,
    "structured": 2,
    "orthogonal": 3,
    "spectral": 3,
    "nn": 4,
    "top": 5,
}


def layer_of(parts: tuple[str, ...]) -> str:
    """Layer of the module lowdisp.<parts...>."""
    if not parts:
        return "top"
    head = parts[0]
    if head in BASE:
        return "base"
    if head == "testing":
        return "testing"
    if head in RANK:
        return head
    return "top"  # cli, __main__, _demo, _bench, __init__


def imported_lowdisp_modules(path: Path) -> list[tuple[str, ...]]:
    tree = ast.parse(path.read_text())
    rel = path.relative_to(PKG.parent).with_suffix("").parts  # ('lowdisp', ...)
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [tuple(a.name.split(".")) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[: len(rel) - node.level])  # same for __init__.py
                mod = base + (node.module.split(".") if node.module else [])
                out.append(tuple(mod))
            elif node.module:
                out.append(tuple(node.module.split(".")))
    return [m[1:] for m in out if m and m[0] == "lowdisp"]


def module_files():
    return sorted(p for p in PKG.rglob("*.py"))


def test_layers_import_only_downwards():
    problems = []
    for path in module_files():
        parts = path.relative_to(PKG).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) == 1:
            continue  # lowdisp/__init__.py re-exports lazily from every subpackage
        src = layer_of(parts)
        for target in imported_lowdisp_modules(path):
            dst = layer_of(target)
            if dst == "testing":
                problems.append(f"{path.relative_to(PKG)} imports lowdisp.testing")
                continue
            if src == "testing":
                if dst != "base":
                    problems.append(f"{path.relative_to(PKG)} (testing) imports {'.'.join(target)}")
                continue
            if {src, dst} == {"orthogonal", "spectral"}:
                problems.append(f"{path.relative_to(PKG)} imports {'.'.join(target)} (siblings)")
            elif RANK[dst] > RANK[src]:
                problems.append(
                    f"{path.relative_to(PKG)} ({src}) imports {'.'.join(target)} ({dst}): upwards"
                )
    assert not problems, "layer violations:\n" + "\n".join(problems)


def test_layer_checker_catches_an_upward_import(tmp_path):
    # the checker itself must see a violation when there is one
    assert RANK[layer_of(("nn", "x"))] > RANK[layer_of(("structured",))]
    assert layer_of(("_validation",)) == "base"


def test_import_is_lazy_and_compiles_nothing():
    code = (
        "import sys, time; t=time.perf_counter(); import lowdisp; "
        "print(time.perf_counter()-t); "
        "print(any(m.startswith('numba') for m in sys.modules)); "
        "print(any(m.startswith('matplotlib') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[1] == "False", "import lowdisp must not import numba"
    assert out[2] == "False", "import lowdisp must not import matplotlib"


@pytest.mark.parametrize("sub", ["structured", "orthogonal", "spectral", "nn"])
def test_subpackage_import_does_not_import_matplotlib(sub):
    code = (
        f"import sys; import lowdisp.{sub}; "
        "print(any(m.startswith('matplotlib') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
