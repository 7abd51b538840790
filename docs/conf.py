"""Sphinx configuration: the API reference is generated from the installed package's docstrings (autodoc), so
build it after `pip install ".[docs]"`: sphinx-build -W -b html docs docs/_build/html"""
from __future__ import annotations

import aclnn_moe

project = "aclnn-moe"
author = "aclnn-moe contributors"
copyright = "aclnn-moe contributors, Apache-2.0"
release = version = aclnn_moe.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "myst_parser",  # README.md sections are included, not copied
]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autosummary_generate = False
myst_heading_anchors = 3
html_theme = "alabaster"
html_static_path: list[str] = []
nitpicky = False
