"""Sphinx configuration of the lowdisp documentation.

Build (from the repository root, after ``pip install -e ".[docs]"``)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

The API reference is generated from each public module's ``__all__``
(``_ext/lowdisp_docs.py``), the gallery from ``examples/`` (sphinx-gallery
runs every ``plot_*.py``), the CLI reference from the ``lowdisp`` parser
(sphinx-argparse). No network: intersphinx is off and MathJax is served from
the build (``sphinx-mathjax-offline``). ``-D sphinx_gallery_conf.plot_gallery=0``
skips running the examples for a quick text-only build.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))  # the checkout's lowdisp, installed or not

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small problems: one BLAS thread is faster

import lowdisp_docs  # noqa: E402

import lowdisp  # noqa: E402

lowdisp_docs.write_module_pages()

# -- project ---------------------------------------------------------------------------------
project = "lowdisp"
author = "lowdisp developers"
copyright = "lowdisp developers"
version = release = lowdisp.__version__

# -- extensions ------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "sphinxarg.ext",
    "sphinx-mathjax-offline",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "_ext", "**/README.md", "auto_examples/*.ipynb"]

# -- autodoc, autosummary, numpydoc ----------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # numpydoc's Parameters section carries the types
autodoc_default_options = {"member-order": "bysource"}
numpydoc_show_class_members = False  # the class template lists the members
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_use_plots = False
# Package docstrings (lowdisp/orthogonal/__init__.py, ...) are short guides with their own
# headings ("Convention", "Input contract"); numpydoc warns about any heading it does not
# know. Only for package docstrings: a misspelt section of a function still warns.
warnings.filterwarnings(
    "ignore", r"Unknown section .* in the docstring of lowdisp[\w.]* in .*__init__\.py", UserWarning
)

# -- MyST ------------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 4  # [nn.md](nn.md#checkpoints) style links
myst_ref_domains = ["std", "py"]  # not sphinx-argparse's domain (it cannot resolve "any")

# -- gallery ---------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py|conftest\.py",
    "within_subsection_order": "lowdisp_docs.GalleryOrder",
    "image_scrapers": ("matplotlib", "lowdisp_docs.png_file_scraper"),
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "show_signature": False,
    "doc_module": ("lowdisp",),
    "backreferences_dir": "api/backrefs",
    "abort_on_example_error": True,
    "plot_gallery": "True",
}

# -- HTML ------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"lowdisp {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
html_context = {"default_mode": "light"}


def setup(app):
    app.connect("autodoc-process-docstring", lowdisp_docs.escape_plain_text_maths)
    app.connect("autodoc-process-signature", lowdisp_docs.public_signature)
