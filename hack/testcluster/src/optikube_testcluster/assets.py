"""Finds the control plane's binaries: a directory named by OPTIKUBE_ASSETS, else the project's
versioned build cache, filled by hack/build-controlplane.sh on first use."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ASSETS_ENV = "OPTIKUBE_ASSETS"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
BUILD_SCRIPT = Path("hack") / "build-controlplane.sh"


class AssetsError(RuntimeError):
    pass


def missing_binaries(directory: Path) -> list[str]:
    return [name for name in BINARIES if not os.access(directory / name, os.X_OK)]


def find_project_root(start: Path) -> Path | None:
    """The nearest ancestor of start holding hack/build-controlplane.sh (a source checkout)."""
    for candidate in (start, *start.parents):
        if (candidate / BUILD_SCRIPT).is_file():
            return candidate
    return None


def _checked(directory: Path, origin: str) -> Path:
    missing = missing_binaries(directory)
    if missing:
        raise AssetsError(f"{origin} ({directory}) lacks executable binaries: {', '.join(missing)}")
    return directory.resolve()


def build_or_locate(project_root: Path) -> Path:
    """Runs the build script, which returns at once when the cache already holds this version."""
    result = subprocess.run(
        ["bash", str(project_root / BUILD_SCRIPT)],
        cwd=project_root,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise AssetsError(
            f"{BUILD_SCRIPT} failed with exit code {result.returncode}; run `make controlplane` to see why"
        )
    return Path(lines[-1])


def find_assets(environ: dict[str, str] | None = None, start: Path | None = None) -> Path:
    env = os.environ if environ is None else environ
    explicit = env.get(ASSETS_ENV)
    if explicit:
        return _checked(Path(explicit).expanduser(), ASSETS_ENV)
    root = find_project_root((start or Path.cwd()).resolve()) or find_project_root(Path(__file__).resolve())
    if root is None:
        raise AssetsError(
            f"no control plane binaries: set {ASSETS_ENV} to a directory holding {', '.join(BINARIES)}, "
            f"or run from a source checkout, whose {BUILD_SCRIPT} builds them"
        )
    return _checked(build_or_locate(root), str(BUILD_SCRIPT))
