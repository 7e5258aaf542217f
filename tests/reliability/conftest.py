"""Reliability tests: the helpers live in ``reliability_rig.py`` next to this file.

pytest runs with ``--import-mode=importlib``, so test modules cannot import a
sibling module by name; this folder is put on ``sys.path`` for them.
"""

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
