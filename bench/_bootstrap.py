"""Imported first by every bench script: keeps ``bench/`` off the import path.

``python bench/x.py`` puts ``bench/`` at the front of ``sys.path``, so a script
named like one of the platform's packages (``bench/registry.py``, the old
``bench/notifications.py``) would be imported in place of that package by every
``import registry`` that follows, in the script and in the libraries it uses.
Every bench script therefore starts with ``import _bootstrap  # noqa: F401``
(before any first-party import; ruff's isort keeps it first among third-party
imports), which removes this folder from ``sys.path``. The script itself is
``__main__``, so nothing else of ``bench/`` is importable afterwards: shared
helpers belong in a library (``diaspora_devstack.testing``), not in ``bench/``.
"""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
