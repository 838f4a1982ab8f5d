"""Memory seen from inside a running operator, for `bench/operator_scale.py --memory-probe`.

Put on the operator's PYTHONPATH with OPTIKUBE_MEMORY_PROBE set to a file path, Python imports this
at start-up: tracemalloc traces every allocation from then on (at a cost in speed and memory: a
probe run's timings and RSS are not the benchmark's), and each SIGUSR2 appends to that file what
is live: the allocations by source line, the objects by type, kopf's per-object memories, the
operator's per-job structures and the allocator's arenas (sys._debugmallocstats' summary).
"""

from __future__ import annotations

import gc
import io
import os
import signal
import site
import sys
import sysconfig
import time
import tracemalloc
import types
from collections import Counter
from pathlib import Path
from typing import Any

PATH = os.environ.get("OPTIKUBE_MEMORY_PROBE")
TOP = 40
# Sources are written relative to where they were installed, so that the file says which module
# holds the memory and nothing about the machine it was measured on.
SOURCE_ROOTS = [
    *(("site-packages", root) for root in site.getsitepackages()),
    ("stdlib", sysconfig.get_paths()["stdlib"]),
    (".", str(Path.cwd())),
]


def _source(filename: str) -> str:
    for label, root in SOURCE_ROOTS:
        if filename.startswith(root + os.sep):
            return f"{label}/{filename[len(root) + 1 :]}"
    return filename


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _arenas() -> str:
    """pymalloc's own summary: arenas allocated and in use (what RSS keeps after a burst)."""
    saved, sys.stderr = sys.stderr, io.StringIO()
    try:
        sys._debugmallocstats()
        text = sys.stderr.getvalue()
    finally:
        sys.stderr = saved
    keep = ("arenas", "Total", "bytes in allocated blocks", "bytes in available blocks", "free pools")
    return "\n".join(line for line in text.splitlines() if any(word in line for word in keep))


def _deep_size(root: Any, seen: set[int]) -> int:
    """Bytes of ``root`` and everything it reaches that ``seen`` does not hold yet (containers,
    dataclasses, objects with a __dict__ or __slots__; no modules, classes or functions)."""
    total, stack = 0, [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | types.ModuleType | types.FunctionType):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        else:
            if hasattr(obj, "__dict__") and not isinstance(obj, types.MethodType):
                stack.append(vars(obj))
            for slot in getattr(type(obj), "__slots__", ()):
                if isinstance(slot, str) and hasattr(obj, slot):
                    stack.append(getattr(obj, slot))
    return total


def _operator_structures() -> list[str]:
    """What the operator keeps per job, found through its runtime: counts, and the bytes each
    structure reaches that the ones before it do not (so shared strings count once)."""
    runtime: Any = next((o for o in gc.get_objects() if type(o).__name__ == "OperatorRuntime"), None)
    if runtime is None:
        return ["no OperatorRuntime found"]
    reconciler = runtime.reconciler
    records = list(runtime.store)
    memories = [o for o in gc.get_objects() if type(o).__name__ == "ResourceMemories"]
    lines = [
        f"jobs kept: {len(reconciler.bodies)}, records: {len(records)}, "
        f"armed wakeups: {len(reconciler.wakeups._handles)}, "
        f"per-job Prometheus series: {sum(len(s) for s in runtime.metrics._series.values())}, "
        f"kopf ResourceMemory entries: {sum(len(m._items) for m in memories)}"
    ]
    # the shared things first, so that what a job points to is not counted as its own
    seen: set[int] = set()
    _deep_size([runtime.config, runtime.connection, runtime.client, runtime.backend], seen)
    parts: list[tuple[str, Any]] = [
        ("job bodies", reconciler.bodies),
        ("records: accepted specs", [r.accepted for r in records]),
        ("records: trials", [r.trials for r in records]),
        ("records: written status", [r.written_json for r in records]),
        ("records: the rest", records),
        ("runs (Jobs, pods)", runtime.runs),
        ("Prometheus registry", runtime.metrics),
        ("token reviews", runtime.authenticator._cache),
        ("kopf per-object memories", memories),
        ("wakeups", reconciler.wakeups),
    ]
    for label, part in parts:
        lines.append(f"{_deep_size(part, seen) / 2**20:8.2f} MiB  {label}")
    return lines


def _report(signum: int, frame: Any) -> None:
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    traced, peak = tracemalloc.get_traced_memory()
    types = Counter(type(o).__name__ for o in gc.get_objects())
    with open(PATH or os.devnull, "a") as out:
        out.write(
            f"=== {time.strftime('%H:%M:%S')} RSS {_rss_kib() / 1024:.1f} MiB, traced "
            f"{traced / 2**20:.1f} MiB (peak {peak / 2**20:.1f} MiB)\n"
        )
        out.write("\n".join(_operator_structures()) + "\n")
        out.write("--- by file\n")
        for stat in snapshot.statistics("filename")[:TOP]:
            out.write(f"{stat.size / 2**20:8.2f} MiB {stat.count:8d} {_source(stat.traceback[0].filename)}\n")
        out.write("--- by line\n")
        for stat in snapshot.statistics("lineno")[:TOP]:
            frame0 = stat.traceback[0]
            where = f"{_source(frame0.filename)}:{frame0.lineno}"
            out.write(f"{stat.size / 2**20:8.2f} MiB {stat.count:8d} {where}\n")
        out.write("--- gc-tracked objects by type\n")
        out.write(", ".join(f"{name} {count}" for name, count in types.most_common(TOP)) + "\n")
        out.write("--- allocator\n" + _arenas() + "\n")


if PATH:
    tracemalloc.start(int(os.environ.get("OPTIKUBE_MEMORY_PROBE_FRAMES", "1")))
    signal.signal(signal.SIGUSR2, _report)
