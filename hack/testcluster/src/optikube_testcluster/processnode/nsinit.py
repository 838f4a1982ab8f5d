# ruff: noqa: PTH101, PTH103, PTH105, PTH110, PTH112, PTH114, PTH115, PTH116, PTH118, PTH120, PTH211
# (String paths throughout: resolve_in_root walks path components, and the mount calls take str.)
"""The process node's in-namespace runtime: the only code that runs between fork and the pod's
command. Standard library only, and run as a script (`python -S -E nsinit.py MODE SPEC`), so that
it starts in milliseconds instead of importing the whole package.

Modes:
- `hold`: holds a fresh network namespace (the node's network) until killed;
- `sandbox`: holds a pod's network, UTS, IPC, mount and PID namespaces. Its child is PID 1 of the
  pod: when it dies, the kernel kills every process of the pod, so nothing outlives a pod even if
  the agent is SIGKILLed (each level carries PR_SET_PDEATHSIG=SIGKILL);
- `container`: joins a sandbox, builds the container's root in a private mount namespace (an
  overlay whose lower layer is the host's `/`, so mount points can be created anywhere without
  touching the host), pivots into it, drops to the pod's user and execs the command.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

if __package__:  # imported by the agent and the tests
    from optikube_testcluster.processnode import nssyscalls as ns
else:  # run as a script (`python -S -E nsinit.py`): its folder is the first entry of sys.path
    import nssyscalls as ns  # type: ignore[no-redef]

# Paths of the host that a container never sees as they are: it gets its own.
PRIVATE_PREFIXES = ("/proc", "/sys", "/dev", "/tmp")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


# ---- pure helpers, unit-tested ------------------------------------------------------------------


def resolve_in_root(root: str, path: str, max_links: int = 40) -> str:
    """The host path of `path` as seen by a process whose root is `root`: symlinks (absolute ones
    included) resolve inside root, never to the host's files (/var/run -> /run stays in root)."""
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            links += 1
            if links > max_links:
                raise OSError(40, f"too many symbolic links resolving {path} in {root}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def host_submounts(mountinfo: str, exclude: list[str]) -> list[str]:
    """The top-most mount points of the host other than `/`, outside excluded prefixes: what the
    overlay of `/` does not show and must be bind-mounted into a container's root."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(fields[4].replace("\\040", " "))

    kept = [p for p in points if p != "/" and not any(under(p, e) for e in (*PRIVATE_PREFIXES, *exclude))]
    tops = [p for p in sorted(set(kept)) if not any(q != p and under(p, q) for q in kept)]
    return tops


# ---- hold and sandbox ---------------------------------------------------------------------------


def _pause_forever(reap: bool) -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    if reap:
        signal.signal(signal.SIGCHLD, lambda *_: None)
    while True:
        if reap:
            try:
                while os.waitpid(-1, os.WNOHANG)[0] > 0:
                    pass
            except ChildProcessError:
                pass
        signal.pause()


def hold(spec: dict[str, Any]) -> None:
    ns.die_with_parent()
    if os.getppid() != spec["parent"]:
        os._exit(1)
    ns.unshare(ns.CLONE_NEWNET)
    print(json.dumps({"pid": os.getpid()}), flush=True)
    _pause_forever(reap=False)


def sandbox(spec: dict[str, Any]) -> None:
    ns.die_with_parent()
    if os.getppid() != spec["parent"]:
        os._exit(1)
    flags = ns.CLONE_NEWNS | ns.CLONE_NEWUTS | ns.CLONE_NEWIPC | ns.CLONE_NEWPID
    if spec.get("netns"):
        ns.setns(spec["netns"], ns.CLONE_NEWNET)  # hostNetwork: the node's network namespace
    else:
        flags |= ns.CLONE_NEWNET
    ns.unshare(flags)
    ns.mount(None, "/", None, ns.MS_REC | ns.MS_PRIVATE)
    # Pod-level memory (emptyDir medium Memory, /dev/shm) lives in this mount namespace only,
    # so it vanishes with the pod and is never part of the host's mount table.
    for tmpfs in spec.get("tmpfs", []):
        ns.mount(
            "tmpfs", tmpfs["path"], "tmpfs", ns.MS_NOSUID | ns.MS_NODEV, tmpfs.get("options", "mode=1777")
        )
    socket.sethostname(spec["hostname"])
    outer = os.getpid()
    child = os.fork()
    if child == 0:  # PID 1 of the pod
        ns.die_with_parent()
        if os.getppid() != 0:  # the parent lives outside this PID namespace, so 0 means alive
            os._exit(1)
        del outer
        _pause_forever(reap=True)
    print(json.dumps({"pid": child}), flush=True)
    _, status = os.waitpid(child, 0)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


# ---- container ----------------------------------------------------------------------------------


def _mkdirs(path: str, forbidden: list[str]) -> None:
    if os.path.isdir(path):
        return
    for prefix in forbidden:
        if path.startswith(prefix.rstrip("/") + "/"):
            raise OSError(
                1, f"{path} would be created on a host mount ({prefix}), which is shared with the host"
            )
    os.makedirs(path, exist_ok=True)


def _target(root: str, path: str, is_file: bool, forbidden: list[str]) -> str:
    target = resolve_in_root(root, path)
    if is_file:
        _mkdirs(os.path.dirname(target), forbidden)
        if not os.path.exists(target):
            with open(target, "a"):
                pass
    else:
        _mkdirs(target, forbidden)
    return target


def _bind(source: str, target: str, readonly: bool, recursive: bool = True) -> None:
    ns.mount(source, target, None, ns.MS_BIND | (ns.MS_REC if recursive else 0))
    if readonly:
        ns.mount(None, target, None, ns.MS_BIND | ns.MS_REMOUNT | ns.MS_RDONLY)


def open_up(root: str, paths: list[str]) -> None:
    """Lets any user reach paths (the venv standing in for the image, and the interpreter it
    links to): o+x on each ancestor directory, in the container's own overlay layer only."""
    for path in paths:
        parts = [p for p in path.split("/") if p]
        for depth in range(1, len(parts) + 1):
            inside = os.path.join(root, *parts[:depth])
            try:
                mode = os.stat(inside).st_mode
            except OSError:
                break
            if os.path.isdir(inside) and not mode & 0o001:
                os.chmod(inside, (mode & 0o7777) | 0o001)


def _populate_dev(root: str, shm: str | None) -> None:
    dev = os.path.join(root, "dev")
    ns.mount("tmpfs", dev, "tmpfs", ns.MS_NOSUID, "mode=755,size=65536k")
    for name in DEVICES:
        with open(os.path.join(dev, name), "a"):
            pass
        ns.mount(f"/dev/{name}", os.path.join(dev, name), None, ns.MS_BIND)
    os.makedirs(os.path.join(dev, "pts"))
    ns.mount(
        "devpts",
        os.path.join(dev, "pts"),
        "devpts",
        ns.MS_NOSUID | ns.MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=620",
    )
    os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
    os.makedirs(os.path.join(dev, "shm"))
    if shm:
        ns.mount(shm, os.path.join(dev, "shm"), None, ns.MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0")):
        os.symlink(target, os.path.join(dev, name))
    os.symlink("/proc/self/fd/1", os.path.join(dev, "stdout"))
    os.symlink("/proc/self/fd/2", os.path.join(dev, "stderr"))


def build_root(spec: dict[str, Any]) -> str:
    """Mounts the container's root at spec['rootfs'] (in this process's own mount namespace)."""
    root, scratch = spec["rootfs"], spec["scratch"]
    ns.mount(None, "/", None, ns.MS_REC | ns.MS_PRIVATE)
    ns.mount("tmpfs", scratch, "tmpfs", ns.MS_NODEV, "mode=755")
    os.makedirs(os.path.join(scratch, "upper"))
    os.makedirs(os.path.join(scratch, "work"))
    options = f"lowerdir=/,upperdir={scratch}/upper,workdir={scratch}/work"
    ns.mount("overlay", root, "overlay", 0, options)
    with open("/proc/self/mountinfo") as info:
        submounts = host_submounts(info.read(), spec.get("exclude", []))
    for point in submounts:
        if os.path.isdir(point):
            _bind(point, _target(root, point, False, []), False)
    ns.mount("proc", os.path.join(root, "proc"), "proc", ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC)
    ns.mount(
        "sysfs", os.path.join(root, "sys"), "sysfs", ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC | ns.MS_RDONLY
    )
    _populate_dev(root, spec.get("shm"))
    if not spec.get("readonly_root"):
        ns.mount("tmpfs", os.path.join(root, "tmp"), "tmpfs", ns.MS_NOSUID | ns.MS_NODEV, "mode=1777")
    for path in spec.get("mask", []):
        inside = resolve_in_root(root, path)
        if os.path.isdir(inside):  # the node's own files (other pods' secrets) stay hidden
            ns.mount("tmpfs", inside, "tmpfs", ns.MS_RDONLY | ns.MS_NOSUID | ns.MS_NODEV, "size=4k,mode=000")
    for item in spec.get("mounts", []):
        is_file = item.get("file", not os.path.isdir(item["source"]))
        target = _target(root, item["target"], is_file, submounts)
        _bind(item["source"], target, item.get("readonly", False))
    _show_image(root, spec.get("image", []), submounts)
    _mkdirs(resolve_in_root(root, spec.get("cwd") or "/"), submounts)
    if spec.get("uid"):
        open_up(root, spec.get("traversable", []))
    if spec.get("readonly_root"):
        ns.mount(None, root, None, ns.MS_BIND | ns.MS_REMOUNT | ns.MS_RDONLY)
    return root


def _show_image(root: str, paths: list[str], submounts: list[str]) -> None:
    """The image's folders that a private /tmp (or a volume over it) would hide, bound read-only."""
    bound: list[str] = []
    for path in sorted(paths, key=len):
        hidden = any(under(path, prefix) for prefix in PRIVATE_PREFIXES)
        if not hidden or any(under(path, parent) for parent in bound) or not os.path.isdir(path):
            continue
        _bind(path, _target(root, path, False, submounts), True)
        bound.append(path)


def _enter(root: str, spec: dict[str, Any]) -> None:
    os.chdir(root)
    ns.pivot_root(".", ".")  # stacks the old root on top of the new one; detaching it leaves the new
    ns.umount(".", ns.MNT_DETACH)
    os.chdir("/")
    os.chdir(spec.get("cwd") or "/")
    os.setgroups([int(g) for g in spec.get("groups", [])])
    os.setgid(int(spec.get("gid", 0)))
    os.setuid(int(spec.get("uid", 0)))
    if spec.get("ns.no_new_privs"):
        ns.no_new_privs()
    ns.die_with_parent()  # credential changes clear the parent-death signal: set it again last


def _child(spec: dict[str, Any], errors: int) -> None:
    try:
        os.setsid()
        ns.die_with_parent()
        if os.getppid() != 0:  # outside this PID namespace, a live parent reads as 0
            os._exit(1)
        ns.unshare(ns.CLONE_NEWNS)
        root = build_root(spec)
        _enter(root, spec)
        for signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        argv = spec["argv"]
        try:
            os.execvpe(argv[0], argv, spec["env"])
        except FileNotFoundError:
            path = spec["env"].get("PATH", "")
            raise FileNotFoundError(f"executable {argv[0]!r} not found in $PATH ({path})") from None
    except BaseException as error:  # the parent turns this into a StartError
        os.write(errors, f"{type(error).__name__}: {error}".encode()[:4000])
        os._exit(128)


def _write_result(path: str, result: dict[str, Any]) -> None:
    partial = path + ".tmp"
    with open(partial, "w") as out:
        json.dump(result, out)
    os.replace(partial, path)


def container(spec: dict[str, Any]) -> None:
    ns.die_with_parent()
    if os.getppid() != spec["parent"]:
        os._exit(1)
    sandbox_pid = spec["sandbox_pid"]
    # Order matters: the mount namespace last, since joining it changes what /proc/<pid> means.
    for kind, flag in (("ipc", ns.CLONE_NEWIPC), ("uts", ns.CLONE_NEWUTS), ("net", ns.CLONE_NEWNET)):
        ns.setns(f"/proc/{sandbox_pid}/ns/{kind}", flag)
    ns.setns(f"/proc/{sandbox_pid}/ns/pid", ns.CLONE_NEWPID)  # applies to the child forked below
    ns.setns(f"/proc/{sandbox_pid}/ns/mnt", ns.CLONE_NEWNS)
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        os.close(read_end)
        _child(spec, write_end)
    os.close(write_end)

    # As a runtime stops a container: the signal goes to its main process only (which decides
    # what its children get); whatever is left in its process group is killed once it exits.
    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signum)

    for signum in (
        signal.SIGTERM,
        signal.SIGINT,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
    ):
        signal.signal(signum, forward)
    error = b""
    while chunk := os.read(read_end, 4096):
        error += chunk
    started = time.time()
    result_path = spec["result"]
    if not error:
        _write_result(result_path, {"pid": child, "startedAt": started})
    _, status = os.waitpid(child, 0)
    _kill_group(child, signal.SIGKILL)  # what the command left behind in its process group
    code = os.waitstatus_to_exitcode(status)
    exit_code = 128 - code if code < 0 else code
    result: dict[str, Any] = {
        "pid": child,
        "startedAt": started,
        "finishedAt": time.time(),
        "exitCode": exit_code,
    }
    if code < 0:
        result["signal"] = -code
    if error:
        result["error"] = error.decode(errors="replace")
        print(f"process node: cannot start container: {result['error']}", file=sys.stderr, flush=True)
    _write_result(result_path, result)
    os._exit(exit_code & 0xFF)


def _kill_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


MODES = {"hold": hold, "sandbox": sandbox, "container": container}


def main(argv: list[str]) -> None:
    mode, spec_path = argv
    spec = json.loads(Path(spec_path).read_text())
    MODES[mode](spec)


if __name__ == "__main__":
    main(sys.argv[1:])
