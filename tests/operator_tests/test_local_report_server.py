"""The local report endpoint: 127.0.0.1 only, one token per run, events routed to their run."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from optikube_operator.local.server import ReportServer, RunKey


def _post(url: str, event: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(event).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_tokens_authenticate_and_bind_a_run() -> None:
    received: list[tuple[RunKey, dict[str, Any]]] = []

    async def handler(key: RunKey, event: dict[str, Any]) -> dict[str, Any]:
        received.append((key, event))
        return {"prune": event.get("values", {}).get("accuracy", 1.0) < 0.5}

    async def scenario() -> list[tuple[int, dict[str, Any]]]:
        server = ReportServer(handler)
        url = await server.start()
        assert url.startswith("http://127.0.0.1:")
        token = server.issue_token(RunKey(3))
        event = {"type": "intermediate", "trial": 3, "step": 0, "values": {"accuracy": 0.2}}
        try:
            return [
                await asyncio.to_thread(_post, url, event, None),
                await asyncio.to_thread(_post, url, event, "not-a-token"),
                await asyncio.to_thread(_post, url, {**event, "trial": 4}, token),
                await asyncio.to_thread(_post, url, event, token),
                await asyncio.to_thread(_post, url, {**event, "values": {"accuracy": 0.9}}, token),
            ]
        finally:
            server.revoke(RunKey(3))
            await server.stop()

    replies = asyncio.run(scenario())
    assert [code for code, _ in replies] == [401, 401, 403, 200, 200]
    assert replies[3][1] == {"prune": True} and replies[4][1] == {"prune": False}
    assert [key for key, _ in received] == [RunKey(3), RunKey(3)]


@pytest.mark.parametrize("body", [b"not json", b'["a list"]'])
def test_malformed_events_are_rejected(body: bytes) -> None:
    async def handler(key: RunKey, event: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("never called")

    async def scenario() -> int:
        server = ReportServer(handler)
        url = await server.start()
        token = server.issue_token(RunKey(None))
        request = urllib.request.Request(
            url, data=body, method="POST", headers={"Authorization": f"Bearer {token}"}
        )
        try:
            await asyncio.to_thread(urllib.request.urlopen, request, timeout=5)
        except urllib.error.HTTPError as error:
            return error.code
        finally:
            await server.stop()
        return 200

    assert asyncio.run(scenario()) == 400
