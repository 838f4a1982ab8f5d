"""Tasks and timers the operator starts, each in an empty context.

kopf calls a handler with its cause in context variables: the watch event's whole body
(managedFields included), its patch, its logger and its memo. A task or timer started from a
handler, or from a task started from one, keeps a copy of the context it was started in for as
long as it lives: a job's timer armed by a pass that a pod's event began held that pod's whole
body until its deadline, hours later (about 64 KiB of decoded JSON per job with 251 jobs live,
`bench/memory_probe`). Nothing the operator starts reads kopf's context variables."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def task(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    return asyncio.get_running_loop().create_task(coro, context=contextvars.Context())


def timer(delay: float, callback: Callable[..., object], *args: Any) -> asyncio.TimerHandle:
    return asyncio.get_running_loop().call_later(delay, callback, *args, context=contextvars.Context())
