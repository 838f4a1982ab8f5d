"""Strict decoding of report bodies: what Python's json would let through is refused, naming why."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optikube_operator.api.progress import IntermediateProgress, ProgressError
from optikube_operator.endpoint.body import MAX_DEPTH, BodyError, check_shape, decode_json, decode_progress

EVENT = {"type": "intermediate", "trial": 3, "epoch": 0, "step": 0, "values": {"accuracy": 0.2}}


def test_a_valid_event_decodes() -> None:
    event = decode_progress(json.dumps(EVENT).encode())
    assert isinstance(event, IntermediateProgress) and event.values == {"accuracy": 0.2}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
        (b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1), "nested deeper"),
        (b'{"type":"stage","trial":3,"stage":"x","status":"started","durationSeconds":1e999}', "1e999"),
        (b'{"type":"final","trial":3,"values":{},"results":{"x":-1e400}}', "finite"),
        (b'{"type":"final","trial":3,"values":{},"results":{"x":Infinity}}', "Infinity"),
        (b'{"type":"final","trial":3,"values":{"a":NaN}}', "NaN"),
        (b'{"type":"final","trial":3,"trial":4,"values":{}}', "'trial' appears twice"),
        (b'{"type":"failed","trial":3,"message":"\\ud800"}', "surrogate"),
        (b'{"type":"failed","trial":3,"message":"\xff"}', "not UTF-8"),
        (b'{"type":"final","trial":3,"values":{},"results":{"x":' + b"9" * 5000 + b"}}", "not JSON"),
        (b"", "not JSON"),
        (b'{"type": "intermediate"', "not JSON"),
    ],
    ids=[
        "deep-list",
        "deep-object",
        "overflow",
        "negative-overflow",
        "infinity",
        "nan",
        "duplicate-key",
        "lone-surrogate",
        "not-utf8",
        "huge-integer",
        "empty",
        "truncated",
    ],
)
def test_what_lenient_json_accepts_is_refused(body: bytes, named: str) -> None:
    with pytest.raises(BodyError, match=named):
        decode_progress(body)


def test_a_document_at_the_depth_limit_is_accepted_and_one_deeper_is_not() -> None:
    def nested(depth: int) -> object:
        document: object = 1
        for _ in range(depth):
            document = {"a": document}
        return document

    check_shape(nested(MAX_DEPTH))
    with pytest.raises(BodyError):
        check_shape(nested(MAX_DEPTH + 1))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), JSON_VALUES.map(lambda v: json.dumps(v).encode())))
def test_any_body_is_an_event_or_a_value_error(body: bytes) -> None:
    """Whatever arrives, decoding ends in an event or a refusal (never another exception: a 500)."""
    with contextlib.suppress(BodyError, ProgressError):
        decode_progress(body)


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_every_decoded_document_is_finite_and_reencodes_as_strict_json(value: object) -> None:
    try:
        document = decode_json(json.dumps(value).encode())
    except BodyError:
        return
    json.dumps(document, allow_nan=False).encode("utf-8")  # raises on inf, NaN or a surrogate
