"""The hostile-report fuzzer, run as its own processes so that generating and sending cases does not
compete with the operator (which the tests run in their own process) for one interpreter lock.

`python hostile_fuzz.py probe URL` (the token on stdin) sends valid reports of trial 0 until it is
terminated, printing each one's status and seconds as a JSON line. `python hostile_fuzz.py
generate EXAMPLES` prints the cases as JSON lines; generating them is
hypothesis's work, done before the timed phase so that the operator is measured under the load of
the requests, not of the generator. `python hostile_fuzz.py send URL CASES` posts them, with the
tokens as a JSON object on stdin, and prints a JSON object: the count of each (class, status) and
the cases refused with the wrong status (or let in).

Each case is (class, whose token, body, the statuses that refuse it); every body is invalid by
construction (no lax parser turns it into a valid event) and refusing one changes nothing, so each
must be refused, however often it is sent.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kube_harness import post

from optikube_operator.api.progress import MAX_PROGRESS_BYTES, MAX_STEP

FUZZED = 1  # the trial whose token sends the fuzz
LATEST = 5  # the step recorded for it before the fuzz: steps up to here are replays
PROGRESS_TYPES = ("intermediate", "stage", "final", "pruned", "failed")


def _raw_post(url: str, body: bytes, token: str) -> int:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (ConnectionError, urllib.error.URLError):
        return 0  # the server may hang up on an oversized body before reading all of it


Case = tuple[str, str, bytes, frozenset[int]]
R400, R403, R409, R413, R401 = (frozenset({c}) for c in (400, 403, 409, 413, 401))


def _event(**fields: Any) -> dict[str, Any]:
    return {
        "type": "intermediate",
        "trial": FUZZED,
        "epoch": 6,
        "step": 6,
        "values": {"accuracy": 0.5},
    } | fields


def _body(document: Any) -> bytes:
    return json.dumps(document).encode()


# values no lax parser turns into a valid one: containers, words, out of range
WRONG_INT = st.one_of(
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.text(alphabet="abcxyz", min_size=1, max_size=6),
    st.integers(max_value=-1),
    st.integers(min_value=MAX_STEP + 1),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: v != int(v)),
)
WRONG_METRIC = st.one_of(
    st.text(alphabet="abcxyz", min_size=1, max_size=6),
    st.lists(st.floats(allow_nan=False), min_size=1, max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
)
NOT_FINITE = st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e400"])
KNOWN_FIELDS = {"type", "trial", "stage", "epoch", "step", "values"}

malformed = (
    st.binary(max_size=300)
    .filter(lambda b: not b.strip().startswith(b"{"))
    .map(lambda b: ("malformed", "fuzzed", b, R400))
)
truncated = st.integers(min_value=1, max_value=40).map(
    lambda cut: ("malformed", "fuzzed", _body(_event())[:-cut], R400)
)
wrong_type = st.one_of(
    st.tuples(st.sampled_from(["step", "epoch"]), WRONG_INT).map(lambda kv: _event(**{kv[0]: kv[1]})),
    WRONG_METRIC.map(lambda v: _event(values={"accuracy": v})),
    st.one_of(st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)).map(
        lambda v: _event(values=v)
    ),
    st.just(_event(values={f"m{i}": 0.1 for i in range(17)})),
    st.just(_event(values={"x" * 65: 0.1})),
).map(lambda doc: ("wrong type", "fuzzed", _body(doc), R400))
not_finite = st.tuples(NOT_FINITE, st.sampled_from(["values", "stage-duration", "results"])).map(
    lambda c: (
        "not finite",
        "fuzzed",
        {
            "values": b'{"type":"intermediate","trial":1,"epoch":6,"step":6,"values":{"accuracy":%s}}',
            "stage-duration": b'{"type":"stage","trial":1,"stage":"x","status":"started",'
            b'"durationSeconds":%s}',
            "results": b'{"type":"final","trial":1,"values":{},"results":{"m":{"x":[%s]}}}',
        }[c[1]]
        % c[0],
        R400,
    )
)
unknown_type = (
    st.text(max_size=12)
    .filter(lambda t: t not in PROGRESS_TYPES)
    .map(lambda t: ("unknown type", "fuzzed", _body(_event(type=t)), R400))
)
unknown_field = st.tuples(
    st.text(min_size=1, max_size=12).filter(lambda k: k not in KNOWN_FIELDS), st.integers()
).map(lambda kv: ("unknown field", "fuzzed", _body({**_event(), kv[0]: kv[1]}), R400))
deep = st.integers(min_value=33, max_value=5000).map(
    lambda depth: (
        "too deep",
        "fuzzed",
        b'{"type":"final","trial":1,"values":{},"results":{"r":' + b"[" * depth + b"]" * depth + b"}}",
        R400,
    )
)
duplicate_key = st.integers(min_value=0, max_value=3).map(
    lambda t: (
        "duplicate key",
        "fuzzed",
        b'{"type":"intermediate","trial":1,"trial":%d,"epoch":6,"step":6,"values":{}}' % t,
        R400,
    )
)
huge = st.integers(min_value=MAX_PROGRESS_BYTES + 1, max_value=MAX_PROGRESS_BYTES + 64 * 1024).map(
    lambda size: ("too large", "fuzzed", _body(_event(stage="s" * size)), R413)
)
replayed = st.tuples(st.integers(0, LATEST), st.floats(0, 1)).map(
    lambda sv: (
        "replayed",
        "fuzzed",
        _body(_event(step=sv[0], epoch=sv[0], values={"accuracy": sv[1]})),
        R409,
    )
)
foreign = st.tuples(st.sampled_from([0, 2, 3, 999, None]), st.sampled_from(PROGRESS_TYPES)).map(
    lambda tt: (
        "another trial",
        "fuzzed",
        _body(
            {"type": "failed", "trial": tt[0], "message": "x"}
            if tt[1] != "intermediate"
            else _event(trial=tt[0])
        ),
        R403,
    )
)
finished = st.integers(LATEST + 1, 1000).map(
    lambda s: ("finished trial", "finished", _body(_event(trial=2, step=s, epoch=s)), R409)
)
forged = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=80).map(
    lambda t: ("forged token", t, _body(_event(step=10**6)), R401)
)
CASES = st.one_of(
    malformed,
    truncated,
    wrong_type,
    not_finite,
    unknown_type,
    unknown_field,
    deep,
    duplicate_key,
    replayed,
    foreign,
    finished,
    forged,
    huge,
)


def generate(examples: int) -> list[Case]:
    cases: list[Case] = []

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(CASES)
    def collect(case: Case) -> None:
        cases.append(case)

    collect()
    return cases


def send(url: str, cases: list[Case], tokens: dict[str, str]) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    wrong: list[tuple[str, int, str]] = []
    for kind, whose, body, refused in cases:
        code = _raw_post(url, body, tokens.get(whose, whose))
        outcomes[f"{kind}:{code}"] += 1
        # 0: the server hung up on an oversized body before reading all of it (a refusal too)
        if code not in refused and not (kind == "too large" and code == 0):
            wrong.append((kind, code, body[:200].decode(errors="replace")))
    return {"outcomes": outcomes, "wrong": wrong}


def probe(url: str, token: str) -> None:
    for step in itertools.count():
        event = {"type": "intermediate", "trial": 0, "epoch": 0, "step": step, "values": {"accuracy": 0.5}}
        started = time.monotonic()
        code, reply = post(url, event, token)
        print(json.dumps({"code": code, "reply": reply, "seconds": time.monotonic() - started}), flush=True)
        time.sleep(0.02)


def main() -> None:
    command = sys.argv[1]
    if command == "probe":
        probe(sys.argv[2], sys.stdin.read().strip())
    elif command == "generate":
        for kind, whose, body, refused in generate(int(sys.argv[2])):
            # latin-1 maps every byte to one character, so any body survives JSON unchanged
            print(json.dumps([kind, whose, body.decode("latin-1"), sorted(refused)]))
    elif command == "send":
        url, path = sys.argv[2], sys.argv[3]
        tokens: dict[str, str] = json.loads(sys.stdin.read())
        with open(path, encoding="utf-8") as lines:
            cases = [
                (kind, whose, body.encode("latin-1"), frozenset(refused))
                for kind, whose, body, refused in map(json.loads, lines)
            ]
        json.dump(send(url, cases, tokens), sys.stdout)
    else:
        sys.exit(f"unknown command {command!r}: probe URL, generate EXAMPLES or send URL CASES")


if __name__ == "__main__":
    main()
