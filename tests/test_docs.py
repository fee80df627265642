"""Docs are part of the feature: every public name has a numpydoc docstring with a
runnable Examples section, and the examples run (as doctests)."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

SUBPACKAGES = ["structured", "orthogonal", "spectral", "nn", "testing", "exceptions"]


def public_objects():
    out = []
    for sub in SUBPACKAGES:
        mod = importlib.import_module(f"lowdisp.{sub}")
        for name in getattr(mod, "__all__", []):
            out.append((f"lowdisp.{sub}.{name}", getattr(mod, name)))
    return out


def _documentable(obj) -> bool:
    return inspect.isclass(obj) or inspect.isfunction(obj) or callable(obj)


@pytest.mark.parametrize(
    "qualname,obj", public_objects(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_public_name_has_docstring_with_examples(qualname, obj):
    if not _documentable(obj):
        return  # constants: documented in their module
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{qualname} has no docstring"
    assert "Examples" in doc, f"{qualname}: docstring has no Examples section"


def package_modules():
    mods = ["lowdisp", "lowdisp.cli", "lowdisp.exceptions", "lowdisp.testing"]
    for sub in ("structured", "orthogonal", "spectral", "nn"):
        pkg = importlib.import_module(f"lowdisp.{sub}")
        mods.append(pkg.__name__)
        for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{pkg.__name__}."):
            mods.append(info.name)
    return mods


@pytest.mark.parametrize("modname", package_modules())
def test_examples_run(modname, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write here
    mod = importlib.import_module(modname)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.FAIL_FAST
    )
    failures = []
    with np.printoptions(precision=4, suppress=True, legacy="1.25"):
        for test in finder.find(mod, modname, globs={"np": np}):
            if test.examples:
                runner.run(test, out=failures.append)
    assert not failures, "".join(failures)


# --------------------------------------------------------------------------- docs snippets
# Blocks preceded by "<!-- test: run -->" in docs/*.md run as written, in order, in one
# folder: ```python blocks are executed, ```sh blocks run each `lowdisp ...` line through
# lowdisp.cli.main (a line ending in "# exits N" must exit with N, the others with 0).

DOCS = Path(__file__).resolve().parents[1] / "docs"


def snippet_blocks(page: str) -> list[tuple[str, str]]:
    text = (DOCS / page).read_text()
    return re.findall(r"<!-- test: run -->\s*```(python|sh)\n(.*?)```", text, flags=re.S)


def run_blocks(page: str, capsys) -> None:
    from lowdisp.cli import main

    blocks = snippet_blocks(page)
    assert blocks, f"{page} has no tested snippet"
    for lang, code in blocks:
        if lang == "python":
            exec(compile(code, str(DOCS / page), "exec"), {"__name__": "__docs__"})
            continue
        for line in code.splitlines():
            if not line.strip():
                continue
            command, _, comment = line.partition("  # ")
            m = re.fullmatch(r"exits (\d+)", comment.strip())
            expected = int(m.group(1)) if m else 0
            argv = shlex.split(command)
            assert argv[0] == "lowdisp", line
            code_ = main(argv[1:])
            out = capsys.readouterr()
            assert code_ == expected, f"{line!r} exited {code_}\n{out.out}\n{out.err}"
            if expected == 2:
                assert out.err.startswith("lowdisp: error: ") and out.err.count("\n") == 1


@pytest.mark.slow
@pytest.mark.parametrize("page", ["cli.md", "nn.md"])
def test_docs_snippets_run(page, tmp_path, monkeypatch, capsys):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    run_blocks(page, capsys)
