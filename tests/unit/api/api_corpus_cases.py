"""Reading the invalid-manifest corpus: each file states the field it gets wrong in its header."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
CORPUS = REPO / "tests" / "api_corpus" / "invalid"
EXAMPLES = REPO / "examples"


@dataclass(frozen=True)
class CorpusCase:
    path: Path
    expect: str  # field path as optikube validate prints it
    server: bool  # whether the apiserver can reject it
    server_expect: str  # field path the apiserver names

    @property
    def name(self) -> str:
        return self.path.stem


def _header(text: str, key: str) -> str | None:
    match = re.search(rf"^# {key}: (.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else None


def corpus_cases() -> list[CorpusCase]:
    cases = []
    for path in sorted(CORPUS.glob("*.yaml")):
        text = path.read_text()
        expect = _header(text, "expect")
        server = _header(text, "server")
        if expect is None or server not in ("yes", "no"):
            raise AssertionError(f"{path.name}: needs '# expect: <path>' and '# server: yes|no' lines")
        cases.append(CorpusCase(path, expect, server == "yes", _header(text, "server-expect") or expect))
    return cases


def names_field(reported: str, expected: str) -> bool:
    """Whether a reported path is the expected field or lies inside it."""
    return reported == expected or reported.startswith((expected + ".", expected + "["))


def server_spellings(path: str) -> list[str]:
    """How the apiserver may spell a path with map keys: [key] (CEL) or .key (OpenAPI)."""
    return [re.sub(r'\["([^"]*)"\]', r"[\1]", path), re.sub(r'\["([^"]*)"\]', r".\1", path)]
