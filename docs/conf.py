"""Sphinx configuration of bpgpu's documentation (``python -m sphinx -W -b html docs
docs/_build/html``; ``pip install -e '.[docs]'`` first)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "_ext"))

from public_api import class_members, module_members  # noqa: E402

import bpgpu  # noqa: E402

project = "bpgpu"
author = "the bpgpu authors"
copyright = "2026, the bpgpu authors"  # noqa: A001
release = bpgpu.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
    "cli_reference",
    "results_pages",
]
myst_heading_anchors = 3  # guides link to each other's sections: page.md#section
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
autosummary_generate = True
templates_path = ["_templates"]
# what each class's and module's page lists: the names tests/test_docstrings.py checks
autosummary_context = {"public_members": {**class_members(), **module_members()}}
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
exclude_patterns = ["_build"]
html_theme = "pydata_sphinx_theme"
html_title = f"bpgpu {release}"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}
html_static_path: list[str] = []
# pages without sub-pages get no left sidebar (an empty "Section Navigation" otherwise)
html_sidebars = {
    page: []
    for page in (
        "guides/*",
        "math",
        "testing",
        "compatibility",
        "changelog",
        "development",
        "cli",
        "examples",
    )
}
