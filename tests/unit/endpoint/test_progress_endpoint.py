"""The progress endpoint: bearer tokens bound to one run, events validated before anything is recorded."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from optikube_operator.api.progress import AnyProgress, IntermediateProgress
from optikube_operator.endpoint import BearerTokens, ProgressEndpoint, ProgressRejectedError, RunKey


def _post(url: str, body: bytes, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


EVENT = {"type": "intermediate", "trial": 3, "epoch": 0, "step": 0, "values": {"accuracy": 0.2}}


def _serve(requests: list[tuple[bytes, str | None]]) -> tuple[list[tuple[int, dict[str, Any]]], list[Any]]:
    """Serve an endpoint whose handler records what it gets and prunes low accuracy; post each
    (body, token) where the token "run3" stands for a token issued for trial 3."""
    received: list[tuple[RunKey, AnyProgress]] = []
    outcomes: list[str] = []

    async def handler(key: RunKey, event: AnyProgress) -> dict[str, Any]:
        if event.type == "final":
            raise ProgressRejectedError(409, "trial 3 already finished", "conflict")
        received.append((key, event))
        assert isinstance(event, IntermediateProgress)
        return {"prune": (event.values.get("accuracy") or 1.0) < 0.5}

    async def scenario() -> list[tuple[int, dict[str, Any]]]:
        tokens = BearerTokens()
        endpoint = ProgressEndpoint(handler, tokens, on_outcome=outcomes.append, max_body_bytes=4096)
        url = await endpoint.start("127.0.0.1", 0)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1/progress")
        issued = tokens.issue(RunKey(3))
        try:
            return [
                await asyncio.to_thread(_post, url, body, issued if token == "run3" else token)
                for body, token in requests
            ]
        finally:
            tokens.revoke(RunKey(3))
            await endpoint.stop()

    replies = asyncio.run(scenario())
    assert len(outcomes) == len(requests)
    return replies, received


def test_tokens_authenticate_and_bind_a_run() -> None:
    event = json.dumps(EVENT).encode()
    replies, received = _serve(
        [
            (event, None),
            (event, "not-a-token"),
            (json.dumps({**EVENT, "trial": 4}).encode(), "run3"),
            (event, "run3"),
            (json.dumps({**EVENT, "values": {"accuracy": 0.9}}).encode(), "run3"),
        ]
    )
    assert [code for code, _ in replies] == [401, 401, 403, 200, 200]
    assert replies[3][1] == {"prune": True} and replies[4][1] == {"prune": False}
    assert [key for key, _ in received] == [RunKey(3), RunKey(3)]


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        (b"not json", 400, "not JSON"),
        (b'["a list"]', 400, "JSON object"),
        (json.dumps({**EVENT, "type": "explode"}).encode(), 400, "type"),
        (json.dumps({**EVENT, "values": {"accuracy": "high"}}).encode(), 400, 'values["accuracy"]'),
        (b'{"type": "intermediate", "trial": 3, "epoch": 0, "step": 0, "values": {"a": NaN}}', 400, "NaN"),
        (json.dumps({**EVENT, "surprise": 1}).encode(), 400, "surprise"),
        (json.dumps({**EVENT, "step": -1}).encode(), 400, "step"),
        (json.dumps({"type": "final", "trial": 3, "values": {}}).encode(), 409, "finished"),
        (json.dumps({**EVENT, "values": {"x": 1.0}, "stage": "y" * 8000}).encode(), 413, "bytes"),
    ],
    ids=["text", "list", "type", "wrong-type", "nan", "unknown-field", "negative", "finished", "huge"],
)
def test_bad_events_are_refused_naming_the_problem_and_never_recorded(
    body: bytes, status: int, named: str
) -> None:
    replies, received = _serve([(body, "run3")])
    assert replies[0][0] == status and named in replies[0][1]["error"]
    assert received == []


class _Unreachable:
    """An authenticator whose cluster does not answer (the apiserver is restarting)."""

    async def authenticate(self, token: str) -> None:
        raise ConnectionError("the apiserver does not answer")


def test_an_unreachable_cluster_answers_503_so_the_trainer_retries() -> None:
    async def failing_write(key: RunKey, event: AnyProgress) -> dict[str, Any]:
        raise ConnectionError("the status write did not go through")

    async def scenario() -> list[tuple[int, dict[str, Any]]]:
        tokens = BearerTokens()
        replies = []
        for endpoint, token in (
            (ProgressEndpoint(failing_write, _Unreachable()), "any"),
            (ProgressEndpoint(failing_write, tokens), tokens.issue(RunKey(3))),
        ):
            url = await endpoint.start("127.0.0.1", 0)
            try:
                replies.append(await asyncio.to_thread(_post, url, json.dumps(EVENT).encode(), token))
            finally:
                await endpoint.stop()
        return replies

    (auth_code, auth_reply), (write_code, write_reply) = asyncio.run(scenario())
    assert auth_code == 503 and "cannot be verified" in auth_reply["error"]
    assert write_code == 503 and "cannot be recorded" in write_reply["error"]
