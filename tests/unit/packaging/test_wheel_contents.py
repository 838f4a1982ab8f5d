"""The optikube wheel, what `pip install optikube` and both images install, carries the client's
`optikube` package, the operator and the trainer and nothing of the test cluster (hack/testcluster,
a distribution of its own)."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    uv = shutil.which("uv", path=str(Path(sys.executable).parent))
    command = [uv, "build", "--wheel", "--out-dir", str(out)] if uv else None
    if command is None:
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out)]
    subprocess.run([*command, str(ROOT)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob("optikube-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_holds_the_client_the_operator_and_the_trainer_only(wheel: zipfile.ZipFile) -> None:
    top = {name.split("/")[0] for name in wheel.namelist() if not name.endswith(".dist-info/")}
    packages = {name for name in top if not name.endswith(".dist-info")}
    # `optikube` is the client's import name (`from optikube import Client`), a re-export only
    assert packages == {"optikube", "optikube_operator", "optikube_trainer"}
    assert "optikube/__init__.py" in wheel.namelist()
    assert not [name for name in wheel.namelist() if "envtest" in name or "testcluster" in name]


def test_nothing_in_the_wheel_imports_the_test_cluster(wheel: zipfile.ZipFile) -> None:
    sources = [name for name in wheel.namelist() if name.endswith(".py")]
    assert sources
    importing = [name for name in sources if b"optikube_testcluster" in wheel.read(name)]
    assert importing == []


def test_the_base_install_needs_no_test_cluster_dependency(wheel: zipfile.ZipFile) -> None:
    (metadata,) = [name for name in wheel.namelist() if name.endswith(".dist-info/METADATA")]
    requires = email.message_from_bytes(wheel.read(metadata)).get_all("Requires-Dist") or []
    base = [line for line in requires if "extra ==" not in line]
    assert base
    assert not [line for line in requires if line.startswith(("cryptography", "optikube-testcluster"))]
