"""Decoding a progress message's body: strict JSON, bounded, before the progress schema sees it.

Python's `json` is lenient where a hostile body can hurt: `1e999` decodes to infinity (the schema's
free-form `results` and `summary` accept it, and no JSON writer can store it in a status), a deep
`[[[[...` overflows the recursion limit (an unhandled error, a 500), a repeated key silently keeps
the last value (what a proxy that reads the first one saw is not what is recorded), and a lone
UTF-16 surrogate is not text at all. Each is refused here, naming what is wrong.
"""

from __future__ import annotations

import json
import math
from typing import Any

from optikube_operator.api.progress import AnyProgress, parse_progress

# Contract 3 messages are at most four levels deep (results.block.latencyMs.batch1P50); the rest is room
# for a trainer's own results document, not for a parser's recursion limit.
MAX_DEPTH = 32


class BodyError(ValueError):
    """The body is not strict, bounded JSON."""


def _constant(name: str) -> Any:
    raise BodyError(f"{name} is not a number JSON allows")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyError(f"{text[:40]} is beyond the range of a finite number")
    return value


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    for key, value in pairs:
        if key in mapping:
            raise BodyError(f"the key {key[:64]!r} appears twice")
        mapping[key] = value
    return mapping


def _text(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BodyError("a string holds a lone UTF-16 surrogate (not text)") from None


def check_shape(document: Any, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a document nested deeper than ``max_depth`` or holding strings that are not text.
    Iterative: a document as deep as the decoder allows must not overflow this walk either."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, str):
            _text(node)
            continue
        if not isinstance(node, dict | list):
            continue
        if depth > max_depth:
            raise BodyError(f"the document is nested deeper than {max_depth} levels")
        if isinstance(node, dict):
            for key, value in node.items():
                _text(key)
                pending.append((value, depth + 1))
        else:
            pending.extend((value, depth + 1) for value in node)


def decode_json(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BodyError(f"the body is not UTF-8: {error}") from None
    try:
        document = json.loads(text, parse_constant=_constant, parse_float=_finite, object_pairs_hook=_unique)
    except RecursionError:
        raise BodyError(f"the document is nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as error:
        raise BodyError(f"the body is not JSON: {error}") from None
    except BodyError:
        raise
    except ValueError as error:  # an integer of more digits than Python converts
        raise BodyError(f"the body is not JSON: {error}") from None
    check_shape(document, max_depth)
    return document


def decode_progress(raw: bytes, max_depth: int = MAX_DEPTH) -> AnyProgress:
    """The progress a body holds; raises BodyError or ProgressError (both ValueErrors) naming the problem."""
    return parse_progress(decode_json(raw, max_depth))
