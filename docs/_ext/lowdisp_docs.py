"""Sources of the API and CLI reference, generated from the package itself.

``conf.py`` calls :func:`write_module_pages` before every build: one page per
public module, listing every name of the module's ``__all__`` in autosummary
tables (classes, functions, other objects), in ``__all__`` order. Nothing is
hand-listed, so a name added to ``__all__`` appears in the reference at the
next build. :func:`cli_parser` is the ``lowdisp`` command's parser with the
arguments of every sub-command (``lowdisp.cli`` builds only the one named on
the command line); ``api/cli.rst`` renders it with sphinx-argparse.

:func:`escape_plain_text_maths` keeps the plain-text maths of some docstrings
(``|z|``, ``Z_-1``) from being read as reST substitutions and references.
:func:`png_file_scraper` lets the gallery show an example that saves its
figure to a PNG file and closes it instead of leaving it open.

``tests/test_docs.py`` imports this module to check the generated sources.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import shutil
import time
from pathlib import Path

#: The public modules of the reference, in the order of the API index.
MODULES = (
    "lowdisp",
    "lowdisp.structured",
    "lowdisp.structured.families",
    "lowdisp.orthogonal",
    "lowdisp.spectral",
    "lowdisp.nn",
    "lowdisp.testing",
    "lowdisp.exceptions",
)

HERE = Path(__file__).resolve().parents[1] / "api"
_IMPORTED_AT = time.time()  # PNGs older than the build are never moved


def _kind(obj: object) -> str:
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "function"
    return "data"


def _autosummary(names: list[str], *, template: str | None) -> list[str]:
    lines = [".. autosummary::", "   :toctree: generated/"]
    if template:
        lines.append(f"   :template: {template}")
    lines.append("")
    lines += [f"   {name}" for name in names]
    return [*lines, ""]


def module_page(modname: str) -> str:
    """The reST source of ``modname``'s reference page."""
    mod = importlib.import_module(modname)
    names = list(mod.__all__)
    lines = [modname, "=" * len(modname), "", f".. automodule:: {modname}", ""]
    lines += [f".. currentmodule:: {modname}", ""]
    groups: dict[str, list[str]] = {"module": [], "class": [], "function": [], "data": []}
    for name in names:
        groups[_kind(getattr(mod, name))].append(name)
    if groups["module"]:
        lines += ["Subpackages", "-----------", ""]
        for name in groups["module"]:
            lines += [f"- :mod:`{modname}.{name}`"]
        lines += [""]
    if groups["class"]:
        lines += ["Classes", "-------", "", *_autosummary(groups["class"], template="class.rst")]
    if groups["function"]:
        lines += [
            "Functions",
            "---------",
            "",
            *_autosummary(groups["function"], template="function.rst"),
        ]
    if groups["data"]:
        lines += ["Data", "----", ""]
        for name in groups["data"]:
            lines += [f".. data:: {name}", f"   :value: {getattr(mod, name)!r}", ""]
    return "\n".join(lines)


def write_module_pages(folder: Path = HERE) -> list[Path]:
    """Write (only when changed) one ``<module>.rst`` per public module into ``folder``."""
    out = []
    for modname in MODULES:
        path = folder / f"{modname}.rst"
        text = module_page(modname)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        out.append(path)
    return out


def cli_parser() -> argparse.ArgumentParser:
    """The ``lowdisp`` parser with every sub-command's arguments added."""
    from lowdisp import cli

    parser = cli._build_parser(None)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, subparser in sub.choices.items():
        importlib.import_module(cli.COMMANDS[name][0]).add_arguments(subparser)
    return parser


def png_file_scraper(block, block_vars, gallery_conf) -> str:
    """A sphinx-gallery scraper for PNG files an example writes into its own folder.

    sphinx-gallery runs an example in the example's folder; a script written as
    ``fig.savefig("out.png"); plt.close(fig)`` leaves no open figure for the
    matplotlib scraper. Each ``*.png`` written there during the build is moved (the
    source tree stays clean) to the example's next image path and shown like a
    scraped figure.
    """
    from sphinx_gallery.scrapers import figure_rst

    folder = Path(block_vars["src_file"]).parent
    images = []
    for png in sorted(folder.glob("*.png")):
        if png.stat().st_mtime < _IMPORTED_AT:
            continue
        target = Path(next(block_vars["image_path_iterator"]))
        shutil.move(png, target)
        images.append(str(target))
    return figure_rst(images, gallery_conf["src_dir"])


# Inline markup whose content must stay as written: ``literal``, :role:`text`, `text`.
_INLINE = re.compile(r"``.*?``|:[\w:.+-]+:`[^`]*`|`[^`]*`_{0,2}")
# A word ending in "_" before punctuation or the end is a reST reference (Z_-1, (Z_1, ...)).
_REFERENCE_END = re.compile(r"(?<=[A-Za-z0-9])_(?=[^\w]|$)")

#: Docstrings rewritten by :func:`escape_plain_text_maths` in this build (for the report).
ESCAPED: set[str] = set()


def _escape_prose(text: str) -> str:
    out, last = [], 0
    for m in _INLINE.finditer(text):
        out.append(_escape_segment(text[last : m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(_escape_segment(text[last:]))
    return "".join(out)


def _escape_segment(text: str) -> str:
    text = text.replace("|", "\\|")
    return _REFERENCE_END.sub("\\\\_", text)


def escape_plain_text_maths(app, what, name, obj, options, lines) -> None:
    """``autodoc-process-docstring`` hook: escape ``|`` and reference-like ``_`` in prose.

    Docstrings are read in a terminal (``help()``) as much as on the site, and some
    write absolute values and operators as plain text: ``|z| > 1``,
    ``(Z_1, Z_-1)``. In reST, ``|z|`` is a substitution and ``Z_`` a reference,
    both undefined. Outside literal blocks, doctests, directives' bodies and
    inline markup (````...````, ``:math:`...```), these characters are escaped so
    they print as written. ``ESCAPED`` records the names whose docstring changed.
    """
    literal_indent: int | None = None  # inside a literal block or a directive's body
    in_doctest = False
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if not stripped:
            in_doctest = False
            continue
        if literal_indent is not None:
            if indent > literal_indent:
                continue
            literal_indent = None
        if in_doctest or stripped.startswith(">>>"):
            in_doctest = True
            continue
        if stripped.startswith(".. "):
            literal_indent = indent
            continue
        new = _escape_prose(line)
        if stripped.endswith("::"):
            literal_indent = indent
        if new != line:
            lines[i] = new
            ESCAPED.add(name)


#: Gallery order: the structured matrices, then the orthogonal maps and training, then
#: the spectral analysis of trained weights. Examples not listed follow, by file name.
GALLERY_ORDER = (
    "plot_displacement_spectrum.py",
    "plot_toeplitz_solve.py",
    "plot_thomas2018_learned_operators.py",
    "plot_araujo2019_diagonal_circulant.py",
    "plot_spectral_norm.py",
    "plot_orthogonal_maps.py",
    "plot_copy_task.py",
    "plot_trained_pseudospectra.py",
    "plot_pseudospectra.py",
    "plot_kreiss_transient.py",
)


class GalleryOrder:
    """sphinx-gallery ``within_subsection_order``: :data:`GALLERY_ORDER`, then by name."""

    def __init__(self, src_dir: str) -> None:
        self.src_dir = src_dir

    def __call__(self, filename: str) -> tuple[int, str]:
        if filename in GALLERY_ORDER:
            return (GALLERY_ORDER.index(filename), filename)
        return (len(GALLERY_ORDER), filename)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


def public_signature(app, what, name, obj, options, signature, return_annotation):
    """``autodoc-process-signature`` hook: the signature a user calls, without private
    parameters.

    A ``LinearOperator`` subclass inherits SciPy's ``__new__(cls, *args, **kwargs)``,
    which autodoc would show instead of ``__init__``; and keyword parameters starting
    with ``_`` (``_where``: the public name to report errors under) are internal.
    """
    if what not in ("class", "function", "method") or signature is None:
        return None
    target = obj.__init__ if what == "class" else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    params = list(sig.parameters.values())
    if what == "class" and params and params[0].name == "self":
        params = params[1:]
    hidden = [p for p in params if p.name.startswith("_")]
    if not hidden and not (what == "class" and signature == "(*args, **kwargs)"):
        return None
    params = [
        p.replace(annotation=inspect.Parameter.empty) for p in params if not p.name.startswith("_")
    ]
    return str(inspect.Signature(params)), None
