"""Progress messages from rank 0 to the operator or the local CLI (architecture "Contract 3").

Every method may be called on every rank: only rank 0 sends, and the prune decision is broadcast
so that all ranks stop at the same epoch. Without ``OPTIKUBE_PROGRESS_URL`` the messages are printed
as JSON lines on stdout. A push that fails is logged and never fails the training: the final
payload also lands in ``<outputDir>/results.json`` and ``/dev/termination-log``.

The operator answers intermediate progress before writing it and says which step is durable
(``durableStep``); every later step is sent again, as ``unconfirmed``, with each following message
(the final one and the termination message included) until a reply covers it. So an operator
restarted between its reply and its write, or unreachable for a while, loses no step.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from optikube_operator.api.progress import MAX_UNCONFIRMED

log = logging.getLogger(__name__)

PROGRESS_URL_ENV = "OPTIKUBE_PROGRESS_URL"
REFUSED_AS_INVALID = (400, 413)  # the endpoint's answers to a message it can never record
PROGRESS_TOKEN_FILE_ENV = "OPTIKUBE_PROGRESS_TOKEN_FILE"
TERMINATION_LOG = Path("/dev/termination-log")
# Kubernetes keeps at most 4096 bytes of a termination message
TERMINATION_LOG_LIMIT = 4096

Broadcast = Callable[[bool], bool]


def _json_safe(value: Any) -> Any:
    """Turn NaN/inf into None and tensors/numpy scalars into numbers so json.dumps never fails."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (ValueError, RuntimeError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


class ProgressSender:
    def __init__(
        self,
        *,
        rank: int,
        trial: int | None,
        url: str | None = None,
        token_file: str | None = None,
        broadcast: Broadcast | None = None,
        output_dir: Path | None = None,
        termination_log: Path = TERMINATION_LOG,
        stream: TextIO | None = None,
        timeout_s: float = 10.0,
        retries: int = 3,
    ) -> None:
        self.rank = rank
        self.trial = trial
        self.url = url
        self.token_file = token_file
        self._broadcast = broadcast or (lambda flag: flag)
        self.output_dir = output_dir
        self.termination_log = termination_log
        self.stream = stream or sys.stdout
        self.timeout_s = timeout_s
        self.retries = retries
        self.sent: list[dict[str, Any]] = []
        # intermediate progress sent that no reply has said is durable yet, oldest first
        self.unconfirmed: list[dict[str, Any]] = []

    @classmethod
    def from_env(
        cls, *, rank: int, trial: int | None, output_dir: Path | None, broadcast: Broadcast | None = None
    ) -> ProgressSender:
        return cls(
            rank=rank,
            trial=trial,
            url=os.environ.get(PROGRESS_URL_ENV) or None,
            token_file=os.environ.get(PROGRESS_TOKEN_FILE_ENV) or None,
            broadcast=broadcast,
            output_dir=output_dir,
        )

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # --- progress -------------------------------------------------------------------------------

    def intermediate(
        self, epoch: int, values: Mapping[str, float], *, stage: str = "train", step: int | None = None
    ) -> bool:
        """Report one epoch's objective values; returns True on every rank when told to prune."""
        prune = False
        if self.is_main:
            entry = {
                "stage": stage,
                "epoch": epoch,
                "step": epoch if step is None else step,
                "values": dict(values),
            }
            status, reply = self._post(
                self._with_unconfirmed({"type": "intermediate", "trial": self.trial, **entry})
            )
            self._confirm(entry, status, reply)
            prune = bool(reply.get("prune", False))
        return self._broadcast(prune)

    def _with_unconfirmed(self, progress: dict[str, Any]) -> dict[str, Any]:
        return {**progress, "unconfirmed": list(self.unconfirmed)} if self.unconfirmed else progress

    def _confirm(self, entry: dict[str, Any], status: int | None, reply: Mapping[str, Any]) -> None:
        """Keep ``entry`` until a reply says its step is durable (or, unanswered, to send it again);
        drop what a reply covers. An entry refused as invalid (400, 413) is not kept: sent again, it
        would only make the messages that carry it refused too. Any other answer keeps it: a 409 may
        answer a retry of a message whose first reply was lost, its step in memory and not yet
        durable."""
        if not self.url:
            return  # printed, not sent: nothing to confirm
        durable = reply.get("durableStep")
        if isinstance(durable, int) and not isinstance(durable, bool):
            self.unconfirmed = [kept for kept in self.unconfirmed if kept["step"] > durable]
            if entry["step"] <= durable:
                return
        if status in REFUSED_AS_INVALID:
            return
        if all(kept["step"] != entry["step"] for kept in self.unconfirmed):
            self.unconfirmed.append(_json_safe(entry))
        if len(self.unconfirmed) > MAX_UNCONFIRMED:
            log.warning("no reply said a step is durable for a while: the oldest unconfirmed one is dropped")
            self.unconfirmed = self.unconfirmed[-MAX_UNCONFIRMED:]

    def stage(
        self,
        stage: str,
        status: str,
        *,
        duration_s: float | None = None,
        summary: Mapping[str, Any] | None = None,
    ) -> None:
        if self.is_main:
            self.send(
                {
                    "type": "stage",
                    "trial": self.trial,
                    "stage": stage,
                    "status": status,
                    "durationSeconds": duration_s,
                    "summary": dict(summary or {}),
                }
            )

    def final(self, values: Mapping[str, float], results: Mapping[str, Any]) -> None:
        if not self.is_main:
            return
        progress = self._with_unconfirmed(
            {"type": "final", "trial": self.trial, "values": dict(values), "results": dict(results)}
        )
        self._persist(progress, results_payload=results)
        self.send(progress)

    def pruned(self, epoch: int, values: Mapping[str, float] | None = None) -> None:
        if not self.is_main:
            return
        progress = self._with_unconfirmed(
            {"type": "pruned", "trial": self.trial, "epoch": epoch, "values": dict(values or {})}
        )
        self._persist(progress, results_payload=None)
        self.send(progress)

    def failed(self, message: str) -> None:
        if not self.is_main:
            return
        progress = self._with_unconfirmed({"type": "failed", "trial": self.trial, "message": message[-2000:]})
        self._persist(progress, results_payload=None)
        self.send(progress)

    # --- transport ----------------------------------------------------------------------------

    def _token(self) -> str | None:
        if not self.token_file:
            return None
        try:
            # read on every send: projected service-account tokens are rotated by the kubelet
            return Path(self.token_file).read_text().strip()
        except OSError as error:
            log.warning("cannot read progress token file %s: %s", self.token_file, error)
            return None

    def send(self, progress: Mapping[str, Any]) -> dict[str, Any]:
        """POST one progress (rank 0 only); returns the decoded reply, ``{}`` when there is none."""
        return self._post(progress)[1]

    def _post(self, progress: Mapping[str, Any]) -> tuple[int | None, dict[str, Any]]:
        """The endpoint's status (None: no answer, after the retries) and its decoded reply."""
        payload = _json_safe(progress)
        self.sent.append(payload)
        if not self.url:
            self.stream.write(json.dumps(payload, sort_keys=True) + "\n")
            self.stream.flush()
            return None, {}
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        delay = 0.5
        status: int | None = None
        for attempt in range(1, self.retries + 1):
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    text = response.read().decode() or "{}"
                reply = json.loads(text)
                return response.status, reply if isinstance(reply, dict) else {}
            except urllib.error.HTTPError as error:
                # 4xx means the endpoint refused this progress: retrying will not help
                log.warning("progress endpoint answered %s to a %s progress", error.code, payload.get("type"))
                status = error.code
                if error.code < 500:
                    return status, {}
            except (urllib.error.URLError, OSError, json.JSONDecodeError) as error:
                log.warning("progress push %d/%d failed: %s", attempt, self.retries, error)
            if attempt < self.retries:
                time.sleep(delay)
                delay *= 2
        return status, {}

    def _persist(self, progress: Mapping[str, Any], *, results_payload: Mapping[str, Any] | None) -> None:
        payload = _json_safe(progress)
        if results_payload is not None and self.output_dir is not None:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            (self.output_dir / "results.json").write_text(json.dumps(_json_safe(results_payload), indent=2))
        if self.termination_log.exists():
            text = json.dumps(payload)
            if len(text.encode()) > TERMINATION_LOG_LIMIT:
                # keep what the operator needs: the type, the trial and the objective values
                slim = {
                    k: payload[k] for k in ("type", "trial", "values", "message", "epoch") if k in payload
                }
                text = json.dumps(slim)[:TERMINATION_LOG_LIMIT]
                # and of the steps no reply confirmed, the oldest ones that still fit
                for kept in range(len(payload.get("unconfirmed", [])), 0, -1):
                    fuller = json.dumps({**slim, "unconfirmed": payload["unconfirmed"][:kept]})
                    if len(fuller.encode()) <= TERMINATION_LOG_LIMIT:
                        text = fuller
                        break
            try:
                self.termination_log.write_text(text)
            except OSError as error:
                log.warning("cannot write %s: %s", self.termination_log, error)
