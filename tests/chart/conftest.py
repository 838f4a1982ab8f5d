"""The chart tests reuse the operator tier's harness (tests/kube/kube_harness.py): test folders are
not packages, so its folder is put on the import path here."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kube"))
