"""`import optikube` is what a notebook runs first: it pulls in neither torch nor Optuna, nor kopf
or the kubernetes client (the cluster backend imports that one when it is used)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "optuna", "kopf", "kubernetes", "aiohttp", "numpy")


def test_import_optikube_loads_no_heavy_package() -> None:
    probe = (
        "import json, sys\nimport optikube\nfrom optikube import Client\nClient.local(output_dir='runs')\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    output = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert json.loads(output) == []


def test_optikube_exports_the_client_its_error_and_its_updates() -> None:
    import optikube

    assert {"Client", "JobHandle", "ClientError", "ErrorReason", "TrialStarted", "PhaseChanged"} <= set(
        optikube.__all__
    )
    assert all(hasattr(optikube, name) for name in optikube.__all__)
