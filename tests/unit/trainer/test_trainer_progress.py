"""The ProgressSender against a real HTTP server on 127.0.0.1: auth, shapes, prune replies, fallbacks."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_progress_endpoint import ProgressEndpoint, progress_endpoint
from optikube_trainer.progress import ProgressSender


@pytest.fixture
def endpoint() -> Iterator[ProgressEndpoint]:
    with progress_endpoint() as state:
        yield state


def test_events_are_posted_with_the_bearer_token(endpoint: ProgressEndpoint, tmp_path: Path) -> None:
    url, state = endpoint.url, endpoint
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    progress = ProgressSender(
        rank=0,
        trial=3,
        url=url,
        token_file=str(token),
        output_dir=tmp_path / "out",
        termination_log=tmp_path / "missing-termination-log",
    )
    assert progress.intermediate(0, {"accuracy": 0.5, "valLoss": float("nan")}) is False
    progress.stage("train", "completed", duration_s=1.5, summary={"epochs": 2})
    progress.final({"accuracy": 0.9}, {"curves": {}})
    assert [e["type"] for e in state.events] == ["intermediate", "stage", "final"]
    assert state.events[0] == {
        "type": "intermediate",
        "trial": 3,
        "stage": "train",
        "epoch": 0,
        "step": 0,
        "values": {"accuracy": 0.5, "valLoss": None},
    }
    assert state.events[1]["durationSeconds"] == 1.5
    assert all(h["Authorization"] == "Bearer secret-token" for h in state.headers)
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == {"curves": {}}
    assert not (tmp_path / "missing-termination-log").exists()


def test_prune_reply_is_returned_and_broadcast(endpoint: ProgressEndpoint, tmp_path: Path) -> None:
    url, state = endpoint.url, endpoint
    state.prune_after = 2
    seen: list[bool] = []

    def broadcast(flag: bool) -> bool:
        seen.append(flag)
        return flag

    progress = ProgressSender(rank=0, trial=1, url=url, broadcast=broadcast, output_dir=tmp_path)
    assert progress.intermediate(0, {"accuracy": 0.1}) is False
    assert progress.intermediate(1, {"accuracy": 0.2}) is True
    assert seen == [False, True]


def test_other_ranks_never_send_but_take_the_broadcast(endpoint: ProgressEndpoint, tmp_path: Path) -> None:
    url, state = endpoint.url, endpoint
    progress = ProgressSender(rank=1, trial=1, url=url, broadcast=lambda flag: True, output_dir=tmp_path)
    assert progress.intermediate(0, {"accuracy": 0.1}) is True  # rank 0's decision arrives by broadcast
    progress.final({"accuracy": 1.0}, {})
    assert state.events == []
    assert not (tmp_path / "results.json").exists()


def test_refused_push_does_not_fail_and_final_still_lands_on_disk(
    endpoint: ProgressEndpoint, tmp_path: Path
) -> None:
    url, state = endpoint.url, endpoint
    state.status = 403
    termination = tmp_path / "termination-log"
    termination.write_text("")
    progress = ProgressSender(rank=0, trial=2, url=url, output_dir=tmp_path, termination_log=termination)
    assert progress.intermediate(0, {"accuracy": 0.3}) is False
    progress.final({"accuracy": 0.8}, {"big": "x" * 10_000})
    assert len(state.events) == 2  # a 4xx is not retried
    message = json.loads(termination.read_text())
    assert message["type"] == "final" and message["values"] == {"accuracy": 0.8}  # trimmed under 4 KiB
    assert len(termination.read_text()) <= 4096


def test_unreachable_endpoint_is_retried_then_given_up(tmp_path: Path) -> None:
    progress = ProgressSender(
        rank=0, trial=0, url="http://127.0.0.1:9/none", retries=2, timeout_s=0.5, output_dir=tmp_path
    )
    assert progress.intermediate(0, {"accuracy": 0.3}) is False


def test_without_url_events_are_json_lines(tmp_path: Path) -> None:
    stream = io.StringIO()
    progress = ProgressSender(rank=0, trial=None, stream=stream, output_dir=tmp_path)
    progress.stage("pruning", "started")
    progress.failed("boom")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["type"] for line in lines] == ["stage", "failed"]
    assert lines[1]["message"] == "boom" and lines[1]["trial"] is None


def test_steps_are_sent_again_until_a_reply_says_they_are_durable(
    endpoint: ProgressEndpoint, tmp_path: Path
) -> None:
    """An operator that writes progress behind its replies names the durable step; every later step
    rides along with the next messages (the final one too), so an operator restarted before its
    write loses none (docs/reliability.md)."""
    endpoint.durable_lag = 1
    progress = ProgressSender(rank=0, trial=4, url=endpoint.url, output_dir=tmp_path)
    for epoch in range(3):
        progress.intermediate(epoch, {"accuracy": epoch / 10})
    progress.final({"accuracy": 0.3}, {})
    carried = [[entry["step"] for entry in event.get("unconfirmed", [])] for event in endpoint.events]
    assert carried == [[], [0], [1], [2]]
    assert endpoint.events[1]["unconfirmed"][0] == {
        "stage": "train",
        "epoch": 0,
        "step": 0,
        "values": {"accuracy": 0.0},
    }


def test_unanswered_steps_are_kept_and_refused_ones_dropped(
    endpoint: ProgressEndpoint, tmp_path: Path
) -> None:
    progress = ProgressSender(rank=0, trial=4, url=endpoint.url, output_dir=tmp_path, retries=1)
    endpoint.status = 503  # the operator cannot record it now: sent again with the next step
    progress.intermediate(0, {"accuracy": 0.1})
    endpoint.status = 400  # refused: carried on, it would have every later message refused too
    progress.intermediate(1, {"accuracy": 0.2})
    endpoint.status = 200
    progress.intermediate(2, {"accuracy": 0.3})
    assert [e["step"] for e in endpoint.events[2]["unconfirmed"]] == [0]
    assert [entry["step"] for entry in progress.unconfirmed] == [0, 2]  # no reply named a durable step


def test_the_steps_kept_unconfirmed_are_bounded(endpoint: ProgressEndpoint, tmp_path: Path) -> None:
    from optikube_operator.api.progress import MAX_UNCONFIRMED

    progress = ProgressSender(rank=0, trial=4, url=endpoint.url, output_dir=tmp_path)
    for epoch in range(MAX_UNCONFIRMED + 5):
        progress.intermediate(epoch, {"accuracy": 0.5})
    assert len(progress.unconfirmed) == MAX_UNCONFIRMED
    assert progress.unconfirmed[0]["step"] == 5
