"""Docs are part of the feature: every public name has a numpydoc docstring with a
runnable Examples section, and the examples run (as doctests)."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re
import shlex
import warnings
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
# Every ```python and ```sh block of docs/**/*.md runs as written, in order, one namespace
# and one folder per page, unless the line before it (blank lines aside) is
# "<!-- fragment -->". ```python blocks are executed; ```sh blocks run each `lowdisp ...`
# line through lowdisp.cli.main (a line ending in "# exits N" must exit with N, the others
# with 0; a line ending in a backslash continues on the next). "<!-- test: run -->" (the
# older marker) changes nothing. ```text blocks are output or illustrations, not code.

DOCS = Path(__file__).resolve().parents[1] / "docs"
FRAGMENT = "<!-- fragment -->"
_FENCE = re.compile(r"^( *)```(\w+)\s*$")


def doc_pages() -> list[str]:
    skip = ("_build", "auto_examples", "api")
    return sorted(
        str(p.relative_to(DOCS))
        for p in DOCS.rglob("*.md")
        if not any(part in skip for part in p.relative_to(DOCS).parts)
    )


def code_blocks(page: str) -> list[tuple[str, str, bool, int]]:
    """(language, code, is_fragment, line) of every fenced python/sh block of ``page``."""
    lines = (DOCS / page).read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, lang = len(m.group(1)), m.group(2)
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        before = [line.strip() for line in lines[:i] if line.strip()]
        fragment = bool(before) and before[-1] == FRAGMENT
        if lang in ("python", "sh"):
            code = "\n".join(line[indent:] for line in lines[i + 1 : j]) + "\n"
            blocks.append((lang, code, fragment, i + 1))
        i = j + 1
    return blocks


def snippet_blocks(page: str) -> list[tuple[str, str]]:
    """The blocks of ``page`` that run (not fragments), as (language, code)."""
    return [(lang, code) for lang, code, fragment, _ in code_blocks(page) if not fragment]


def run_blocks(page: str, capsys) -> None:
    from lowdisp.cli import main

    namespace = {"__name__": "__docs__"}
    for lang, code, fragment, line in code_blocks(page):
        if fragment:
            continue
        where = f"{page}, block at line {line}"
        if lang == "python":
            try:
                with warnings.catch_warnings():  # as in a user's session: shown, not raised
                    warnings.simplefilter("default")
                    # input_contract.md passes np.matrix on purpose (numpy's own warning)
                    warnings.filterwarnings(
                        "ignore", "the matrix subclass", PendingDeprecationWarning
                    )
                    exec(compile(code, str(DOCS / page), "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"{where} failed (mark it {FRAGMENT} if it is one)") from exc
            continue
        for cmd_line in code.replace("\\\n", " ").splitlines():  # join continued lines
            if not cmd_line.strip():
                continue
            command, _, comment = cmd_line.partition("  # ")
            m = re.fullmatch(r"exits (\d+)", comment.strip())
            expected = int(m.group(1)) if m else 0
            argv = shlex.split(command)
            assert argv[0] == "lowdisp", f"{where}: {cmd_line!r} is not a lowdisp command"
            code_ = main(argv[1:])
            out = capsys.readouterr()
            assert code_ == expected, f"{where}: {cmd_line!r} exited {code_}\n{out.out}\n{out.err}"
            if expected == 2:
                assert out.err.startswith("lowdisp: error: ") and out.err.count("\n") == 1


def test_docs_pages_have_code_and_the_tutorials_are_there():
    pages = doc_pages()
    for page in (
        "index.md",
        "tutorials/ldr_in_10_minutes.md",
        "tutorials/training_to_pseudospectra.md",
    ):
        assert page in pages
    assert sum(len(snippet_blocks(p)) for p in pages) >= 15


def test_every_guide_page_is_in_the_user_guide():
    """A page outside every toctree is a warning, hence an error of the docs build."""
    toctree = (DOCS / "user_guide.md").read_text().split("```{toctree}", 1)[1]
    listed = set(re.findall(r"^([\w/]+)$", toctree, flags=re.M))
    pages = {p.stem for p in DOCS.glob("*.md")} - {"index", "user_guide"}
    assert pages <= listed, f"add {sorted(pages - listed)} to the toctree of docs/user_guide.md"


@pytest.mark.parametrize("page", doc_pages())
def test_fragments_are_marked_on_their_own_line(page):
    text = (DOCS / page).read_text()
    assert text.count(FRAGMENT) == sum(fragment for *_, fragment, _ in code_blocks(page)), (
        f"{page}: a {FRAGMENT} marker must stand right before a ```python or ```sh block"
    )


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in doc_pages() if snippet_blocks(p)])
def test_docs_snippets_run(page, tmp_path, monkeypatch, capsys):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    try:
        run_blocks(page, capsys)
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")


# --------------------------------------------------------------------------- the Sphinx site
# The site is built by .ci/run after the tests (too slow for pytest). These tests check its
# sources; the ones over the built HTML run when LOWDISP_DOCS_HTML names the build folder.


def _docs_helpers():
    import sys

    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import lowdisp_docs
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    return lowdisp_docs


_AUTOSUMMARY_ENTRY = re.compile(r"^   (\w+)$", re.M)


@pytest.mark.parametrize("modname", _docs_helpers().MODULES)
def test_api_reference_lists_every_name_of_all(modname):
    mod = importlib.import_module(modname)
    page = _docs_helpers().module_page(modname)
    listed = set(_AUTOSUMMARY_ENTRY.findall(page))
    listed |= set(re.findall(r"^- :mod:`[\w.]+\.(\w+)`$", page, flags=re.M))
    listed |= set(re.findall(r"^\.\. data:: (\w+)$", page, flags=re.M))
    assert listed == set(mod.__all__), (
        f"{modname}: missing {set(mod.__all__) - listed}, extra {listed - set(mod.__all__)}"
    )
    assert page.count(".. autosummary::") == page.count(":toctree: generated/")


def test_api_reference_covers_every_public_module():
    import lowdisp

    helpers = _docs_helpers()
    public = {"lowdisp", "lowdisp.exceptions"}
    for info in pkgutil.walk_packages(lowdisp.__path__, prefix="lowdisp."):
        private = any(part.startswith("_") for part in info.name.split("."))
        if info.ispkg and not private and info.name != "lowdisp.kernels":  # kernels: private
            public.add(info.name)
    assert set(helpers.MODULES) == public
    index = (DOCS / "api" / "index.rst").read_text()
    for modname in helpers.MODULES:
        assert re.search(rf"^   {re.escape(modname)}$", index, flags=re.M), modname


def test_cli_reference_has_every_command_with_its_arguments():
    from lowdisp import cli

    parser = _docs_helpers().cli_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(sub.choices) == set(cli.COMMANDS)
    assert len(sub.choices["train"]._actions) > 10  # the arguments were added
    assert ":func: cli_parser" in (DOCS / "api" / "cli.rst").read_text()


def test_sphinx_conf_needs_no_network_and_the_docs_extra_has_every_extension():
    import ast
    import tomllib

    tree = ast.parse((DOCS / "conf.py").read_text())
    assigned = {
        t.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    extensions = ast.literal_eval(assigned["extensions"])
    assert "sphinx.ext.intersphinx" not in extensions  # no network where the docs are built
    assert ast.literal_eval(assigned["html_theme"]) == "pydata_sphinx_theme"
    pyproject = tomllib.loads((DOCS.parent / "pyproject.toml").read_text())
    extra = " ".join(pyproject["project"]["optional-dependencies"]["docs"]).lower()
    distributions = {
        "numpydoc": "numpydoc",
        "myst_parser": "myst-parser",
        "sphinx_gallery.gen_gallery": "sphinx-gallery",
        "sphinxarg.ext": "sphinx-argparse",
        "sphinx-mathjax-offline": "sphinx-mathjax-offline",
    }
    for ext in extensions:
        if ext.startswith("sphinx.ext."):
            continue
        assert ext in distributions, f"conf.py: {ext} has no distribution in this test"
        assert distributions[ext] in extra, f"pyproject docs extra lacks {distributions[ext]}"
    for dist in ("sphinx", "pydata-sphinx-theme"):
        assert dist in extra


def _built_site() -> Path:
    import os

    folder = os.environ.get("LOWDISP_DOCS_HTML")
    if not folder:
        pytest.skip("set LOWDISP_DOCS_HTML to a built site (.ci/run does)")
    return Path(folder)


class _Links(__import__("html.parser").parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        for key in ("href", "src"):
            if a.get(key) and tag in ("a", "img", "link", "script"):
                self.links.append(a[key])


def test_built_site_has_no_broken_internal_links():
    from urllib.parse import unquote, urlsplit

    site = _built_site()
    pages = {}
    for path in site.rglob("*.html"):
        if path.relative_to(site).parts[0] in ("_static", "_sources"):
            continue  # theme assets and templates, not pages
        parser = _Links()
        parser.feed(path.read_text(errors="replace"))
        pages[path.resolve()] = parser
    assert len(pages) > 100
    broken = []
    for path, parser in pages.items():
        for link in parser.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:")):
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if not target.exists():
                broken.append(f"{path.relative_to(site)}: {link}")
            elif (
                parts.fragment
                and target.suffix == ".html"
                and unquote(parts.fragment) not in pages[target].ids
            ):
                broken.append(f"{path.relative_to(site)}: {link} (no such anchor)")
    assert not broken, "\n".join(broken[:40])


def test_built_site_has_every_api_page_the_gallery_and_offline_maths():
    site = _built_site()
    helpers = _docs_helpers()
    missing = []
    for modname in helpers.MODULES:
        mod = importlib.import_module(modname)
        assert (site / "api" / f"{modname}.html").is_file(), modname
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.ismodule(obj) or not (inspect.isclass(obj) or callable(obj)):
                continue
            if not (site / "api" / "generated" / f"{modname}.{name}.html").is_file():
                missing.append(f"{modname}.{name}")
    assert not missing, missing
    examples = sorted((site / "auto_examples").glob("plot_*.html"))
    assert len(examples) >= 8
    for page in examples:
        figures = list((site / "_images").glob(f"sphx_glr_{page.stem}_*.png"))
        assert figures, f"{page.name} has no figure"
    index = (site / "index.html").read_text()
    assert "_static/mathjax/tex-chtml.js" in index
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert "cdn" not in re.sub(r"<!--.*?-->", "", index).lower().split("mathjax")[0][-200:]
