"""What a real node runs, built on this machine and cached by the hack/ scripts (each returns at
once when its cache is complete): the kubelet, CoreDNS and the pause image (hack/build-node.sh),
and the chart's images (hack/build-images.sh, as root: mmdebstrap and umoci, no Docker)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from optikube_testcluster.assets import AssetsError, find_project_root

NODE_SCRIPT = Path("hack") / "build-node.sh"
IMAGES_SCRIPT = Path("hack") / "build-images.sh"
CNI_BIN_DIRS = (Path("/usr/lib/cni"), Path("/opt/cni/bin"))
CNI_PLUGINS = ("bridge", "host-local", "loopback")
HOST_COMMANDS = ("containerd", "containerd-shim-runc-v2", "ctr", "runc", "unshare", "nsenter", "ip")


@dataclass(frozen=True)
class NodeArtifacts:
    kubelet: Path
    coredns: Path
    pause_archive: Path
    pause_image: str
    runc: Path
    cni_bin_dir: Path


def project_root() -> Path:
    root = find_project_root(Path.cwd().resolve()) or find_project_root(Path(__file__).resolve())
    if root is None:
        raise AssetsError("a real node is built from a source checkout (hack/build-node.sh): none found")
    return root


def _script_output(script: Path, *args: str, what: str) -> list[str]:
    root = project_root()
    result = subprocess.run(
        ["bash", str(root / script), *args], cwd=root, stdout=subprocess.PIPE, text=True, check=False
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise AssetsError(f"{script} failed with exit code {result.returncode}; run `{what}` to see why")
    return lines


def find_cni_bin_dir() -> Path:
    for directory in CNI_BIN_DIRS:
        if all((directory / plugin).is_file() for plugin in CNI_PLUGINS):
            return directory
    raise AssetsError(f"no CNI plugins ({', '.join(CNI_PLUGINS)}) in {CNI_BIN_DIRS}: run `make node`")


def node_artifacts() -> NodeArtifacts:
    missing = [command for command in HOST_COMMANDS if shutil.which(command) is None]
    if missing:
        raise AssetsError(f"a real node needs {', '.join(missing)}: run `make node` (as root, apt-get)")
    directory = Path(_script_output(NODE_SCRIPT, what="make node")[-1])
    runc = shutil.which("runc")
    assert runc is not None
    return NodeArtifacts(
        kubelet=directory / "kubelet",
        coredns=directory / "coredns",
        pause_archive=directory / "pause.oci.tar",
        pause_image=(directory / "pause.image").read_text().strip(),
        runc=Path(runc).resolve(),
        cni_bin_dir=find_cni_bin_dir(),
    )


def chart_image_archives() -> tuple[str, ...]:
    """The operator's and the trainer's OCI archives (`make images-local`), built when missing."""
    return tuple(_script_output(IMAGES_SCRIPT, "all", what="make images-local")[-2:])
