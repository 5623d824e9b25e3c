"""Sphinx configuration of the brainpy-poisson-plugin documentation.

Built strictly by ``make docs``:
``sphinx-build -W --keep-going -b html docs docs/_build/html``. Autodoc imports the
installed package, so build inside the project's virtual environment. The figures and
tables under ``docs/_generated/`` come from the scripts in ``docs/scripts/`` and from
``brainpy-poisson bench``; ``make docs`` regenerates the script outputs first.
"""

from __future__ import annotations

import importlib.util
import os
import sys

# Importing the package must not depend on the autoload hook or on a built kernel.
os.environ.setdefault("BRAINPY_DISABLE_PLUGIN_AUTOLOAD", "1")
os.environ.setdefault("BRAINPY_POISSON_NATIVE", "0")
import warnings

warnings.filterwarnings("ignore", category=RuntimeWarning, module="brainpy_poisson_plugin")

HERE = os.path.dirname(os.path.abspath(__file__))
if importlib.util.find_spec("brainpy_poisson_plugin") is None:  # building from a checkout
    sys.path.insert(0, os.path.dirname(HERE))

import brainpy_poisson_plugin  # noqa: E402

project = "brainpy-poisson-plugin"
author = "brainpy-poisson-plugin developers"
copyright = "brainpy-poisson-plugin developers"
release = brainpy_poisson_plugin.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "scripts", "Thumbs.db", ".DS_Store", "_generated"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_mock_imports: list[str] = []
napoleon_google_docstring = True
napoleon_numpy_docstring = True
napoleon_use_rtype = False

html_theme = "furo"
html_title = f"brainpy-poisson-plugin {release}"
html_static_path: list[str] = []
suppress_warnings = ["myst.header"]
