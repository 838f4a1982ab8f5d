"""Who is reporting: authenticators turn a bearer token into the run it may report for."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RunKey:
    """One run of one job: a trial number, or None for the final pipeline."""

    trial: int | None
    job: str = ""
    namespace: str = ""


@dataclass(frozen=True)
class Caller:
    """An authenticated sender of progress: the run its credential is bound to, and who it is (for logs)."""

    run: RunKey
    identity: str


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Caller | None:
        """The caller a token belongs to, or None when it is unknown, expired or not ours."""
        ...


class BearerTokens:
    """Local mode: each run gets its own random token, so a process can only report for its run."""

    def __init__(self) -> None:
        self._tokens: dict[str, RunKey] = {}

    def issue(self, run: RunKey) -> str:
        token = secrets.token_urlsafe(32)
        self._tokens[token] = run
        return token

    def revoke(self, run: RunKey) -> None:
        for token in [token for token, owner in self._tokens.items() if owner == run]:
            del self._tokens[token]

    async def authenticate(self, token: str) -> Caller | None:
        for known, run in self._tokens.items():
            if hmac.compare_digest(known, token):
                return Caller(run, f"local run {'pipeline' if run.trial is None else f'trial {run.trial}'}")
        return None
