"""Images for real nodes, imported once per machine rather than once per node.

`ctr images import` of the trainer image (2.7 GB of gzip layers, 5 GB unpacked) takes about two
minutes, and even re-importing an archive whose layers are all present reads and hashes all of it
(40 s). So the archives are imported into a **store**: a containerd root directory in the cache
(`<node cache>/image-store`), written only by a short-lived containerd without its CRI plugin, in
a private mount namespace. A node's containerd starts from a hard-linked copy of the store (about
2 s): content blobs and unpacked snapshots are never written in place (containers write to new
upper directories), so sharing their inodes is safe; the two bolt databases are copied.

The store holds exactly the images last asked for (`ensure`); what no wanted image references is
garbage-collected. An flock serializes updates and keeps copies consistent.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from optikube_testcluster.realnode.configs import containerd_config
from optikube_testcluster.realnode.paths import NodePaths

CTR_NAMESPACE = "k8s.io"  # the namespace the CRI plugin reads images from
REF_ANNOTATION = "org.opencontainers.image.ref.name"
IMPORT_TIMEOUT = 1800.0
KEEP_PREFIX = "localhost/optikube/image-store-keep:"  # the old image's second name while a new one unpacks


@dataclass(frozen=True)
class ImageArchive:
    path: Path
    ref: str  # the name the archive's index gives the image
    digest: str  # its manifest's


def read_archive(path: Path) -> ImageArchive:
    """The image an OCI archive holds, from its index.json (the first members of our archives)."""
    with tarfile.open(path, mode="r|") as archive:
        for member in archive:
            if member.name.lstrip("./") == "index.json":
                stream = archive.extractfile(member)
                assert stream is not None
                index = json.loads(stream.read())
                break
        else:
            raise ValueError(f"{path} has no index.json: not an OCI image archive")
    (manifest,) = index["manifests"]
    ref = (manifest.get("annotations") or {}).get(REF_ANNOTATION, "")
    if "/" not in ref:
        raise ValueError(f"{path}: the image is named {ref!r}, not by a full reference")
    return ImageArchive(path, ref, manifest["digest"])


def default_store() -> Path:
    cache = os.environ.get("OPTIKUBE_NODE_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "optikube" / "node"
    )
    return Path(cache) / "image-store"


@contextlib.contextmanager
def _locked(path: Path, mode: int) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ImageStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_store()
        # the store's containerd uses the node layout's names: root/, state/, containerd.sock
        self.paths = NodePaths(self.root)
        self.manifest = self.root / "images.json"
        self.lock = self.root / ".lock"

    def contents(self) -> dict[str, str]:
        """ref -> manifest digest of what the store holds."""
        try:
            return dict(json.loads(self.manifest.read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def ensure(self, archives: Sequence[Path], log: Path) -> dict[str, str]:
        """Makes the store hold exactly these images; returns ref -> digest."""
        wanted = {image.ref: image for image in map(read_archive, archives)}
        with _locked(self.lock, fcntl.LOCK_EX):
            held = self.contents()
            if held == {ref: image.digest for ref, image in wanted.items()}:
                return held
            missing = [image for ref, image in wanted.items() if held.get(ref) != image.digest]
            unwanted = sorted(set(held) - set(wanted))
            self.manifest.unlink(missing_ok=True)  # a store interrupted mid-update is redone
            with self._containerd(log) as ctr:
                present = set(_run([*ctr, "images", "ls", "-q"], 60).split())
                # A new build under the same name: until its unpack is done, only the old image's
                # snapshots hold the shared base and dependency layers, and the garbage collector
                # that the name's update triggers would remove them mid-unpack ("parent snapshot
                # ... does not exist"). A second name keeps the old image alive meanwhile.
                kept = [
                    f"{KEEP_PREFIX}{image.digest.split(':')[1]}" for image in missing if image.ref in present
                ]
                for image, keep in zip([i for i in missing if i.ref in present], kept, strict=True):
                    _run([*ctr, "images", "tag", "--force", image.ref, keep], 60)
                for image in missing:
                    _run([*ctr, "images", "import", str(image.path)], IMPORT_TIMEOUT)
                if unwanted or kept:
                    _run([*ctr, "images", "rm", "--sync", *unwanted, *kept], 600)
                listed = _run([*ctr, "images", "ls", "-q"], 60).split()
            if sorted(listed) != sorted(wanted):
                raise RuntimeError(f"the image store holds {listed}, not {sorted(wanted)}")
            held = {ref: image.digest for ref, image in wanted.items()}
            self.manifest.write_text(json.dumps(held, indent=2, sort_keys=True) + "\n")
            return held

    def copy_to(self, destination: Path) -> None:
        """destination (a node's containerd root, absent) becomes a copy of the store's."""
        with _locked(self.lock, fcntl.LOCK_SH):
            destination.parent.mkdir(parents=True, exist_ok=True)
            _run(["cp", "-a", "--link", str(self.paths.containerd_root), str(destination)], 600)
            # the bolt databases are written in place: each node gets its own
            for database in self.paths.containerd_root.rglob("*.db"):
                target = destination / database.relative_to(self.paths.containerd_root)
                target.unlink()
                shutil.copy2(database, target)

    @contextlib.contextmanager
    def _containerd(self, log: Path) -> Iterator[list[str]]:
        """A containerd on the store, without its CRI, in a mount namespace of its own (unpacking
        mounts overlays; containerd 1.6 keeps state at fixed /run paths)."""
        paths = self.paths
        for directory in (paths.containerd_root, paths.containerd_state):
            directory.mkdir(parents=True, exist_ok=True)
        paths.containerd_config.write_text(containerd_config(paths, "", "", "", cri=False))
        paths.containerd_socket.unlink(missing_ok=True)
        script = 'mount -t tmpfs optikube-run /run && exec containerd --config "$0"'
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    script,
                    str(paths.containerd_config),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ctr = ["ctr", "--address", str(paths.containerd_socket), "--namespace", CTR_NAMESPACE]
        try:
            deadline = time.monotonic() + 60
            while subprocess.run([*ctr, "version"], capture_output=True, check=False).returncode != 0:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the image store's containerd did not start; see {log}")
                time.sleep(0.1)
            yield ctr
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _run(argv: list[str], timeout: float) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout
