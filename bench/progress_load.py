"""The progress load of `bench/operator_scale.py`: trainer pods' intermediate progress, as fast as
the endpoint answers, from one process (run at a lower priority: real trainers would not share the
operator's cores).

Reads a JSON object on stdin: the endpoint's `url`, `pods` ([[trial, token], ...], one per trial
pod), `seconds` and `connections`. Each of `connections` senders goes round its share of the pods
and sends each pod's next step, on a new connection each time as a trainer does, carrying the
steps no reply has yet said are durable (`unconfirmed`, Contract 3) as the trainer does. First
every pod sends once (untimed: each pod's first message costs the operator a TokenReview), then
the timed phase (a line `warm` in between). Prints a JSON object: accepted messages, refused ones
by status, latencies.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Pod:
    trial: int
    token: str
    step: int = 0
    unconfirmed: list[dict[str, Any]] = field(default_factory=list)

    def entry(self) -> dict[str, Any]:
        return {"stage": "train", "epoch": self.step, "step": self.step, "values": {"accuracy": 0.5}}

    def message(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "intermediate", "trial": self.trial, **self.entry()}
        if self.unconfirmed:
            body["unconfirmed"] = list(self.unconfirmed)
        return body

    def replied(self, reply: dict[str, Any]) -> None:
        """The step was accepted: kept until a reply says it is durable; the next step comes next."""
        durable = reply.get("durableStep")
        kept = [*self.unconfirmed, self.entry()]
        if isinstance(durable, int):
            kept = [entry for entry in kept if entry["step"] > durable]
        self.unconfirmed = kept[-64:]
        self.step += 1


@dataclass
class Tally:
    accepted: int = 0
    refused: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


async def send(session: aiohttp.ClientSession, url: str, pod: Pod, tally: Tally | None) -> None:
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {pod.token}"}
    try:
        async with session.post(url, json=pod.message(), headers=headers) as response:
            reply = await response.json(content_type=None)
            status = response.status
    except (aiohttp.ClientError, TimeoutError):
        status, reply = 0, {}
    if status == 200:
        pod.replied(reply)
    if tally is not None:
        if status == 200:
            tally.accepted += 1
            tally.latencies.append(time.monotonic() - started)
        else:
            tally.refused[status] += 1


async def load(url: str, pods: list[Pod], seconds: float, connections: int) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=connections, force_close=True)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        warm = asyncio.Semaphore(connections)

        async def first(pod: Pod) -> None:
            async with warm:
                await send(session, url, pod, None)

        await asyncio.gather(*(first(pod) for pod in pods))
        print("warm", flush=True)  # the caller starts its own counters now
        tally = Tally()
        stop = time.monotonic() + seconds

        async def sender(share: list[Pod]) -> None:
            while time.monotonic() < stop:
                for pod in share:
                    if time.monotonic() >= stop:
                        return
                    await send(session, url, pod, tally)

        began, cpu = time.monotonic(), time.process_time()
        await asyncio.gather(*(sender(pods[i::connections]) for i in range(connections)))
        elapsed, cpu = time.monotonic() - began, time.process_time() - cpu
    ordered = sorted(tally.latencies)
    return {
        "pods": len(pods),
        "connections": connections,
        "seconds": round(elapsed, 1),
        "cpuSeconds": round(cpu, 1),  # the load's own, timed phase
        "accepted": tally.accepted,
        "acceptedPerSecond": round(tally.accepted / elapsed, 1),
        "refused": {str(code): n for code, n in sorted(tally.refused.items())},
        "latencyP50Seconds": round(statistics.median(ordered), 4) if ordered else None,
        "latencyP99Seconds": round(ordered[int(0.99 * (len(ordered) - 1))], 4) if ordered else None,
    }


def main() -> None:
    request = json.load(sys.stdin)
    pods = [Pod(int(trial), str(token)) for trial, token in request["pods"]]
    result = asyncio.run(load(request["url"], pods, float(request["seconds"]), int(request["connections"])))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
