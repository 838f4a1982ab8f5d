"""The one exception a user of the client meets: `ClientError`, whose `reason` says which mistake
or failure it is and whose message ends with what to do about it."""

from __future__ import annotations

import enum
from collections.abc import Sequence

from optikube_operator.api.validation import FieldError


class ErrorReason(enum.StrEnum):
    """Why a client call failed (docs/client.md lists what to do for each)."""

    INVALID_SPEC = "InvalidSpec"  # the spec breaks a rule of `optikube validate`; nothing was sent
    NOT_FOUND = "NotFound"  # no job of that name
    ALREADY_EXISTS = "AlreadyExists"  # a job of that name is there already
    UNREACHABLE = "Unreachable"  # no cluster answered (or no kubeconfig says where one is)
    FORBIDDEN = "Forbidden"  # the cluster refused the caller (RBAC)
    TIMEOUT = "Timeout"  # wait(timeout=...) ran out before the job finished
    JOB_FAILED = "JobFailed"  # the job ended Failed
    NOT_READY = "NotReady"  # results of a job that has not succeeded yet


class ClientError(Exception):
    """What went wrong and what to do; `reason` tells the cases apart, `errors` names the fields of
    an invalid spec."""

    def __init__(
        self, reason: ErrorReason, message: str, hint: str, errors: Sequence[FieldError] = ()
    ) -> None:
        self.reason = reason
        self.hint = hint
        self.errors = tuple(errors)
        self.detail = message
        super().__init__(f"{message}\nWhat to do: {hint}" if hint else message)


def invalid_spec(errors: Sequence[FieldError], source: str | None = None) -> ClientError:
    where = f"{source}: " if source else ""
    listed = "\n".join(f"  {error}" for error in errors)
    return ClientError(
        ErrorReason.INVALID_SPEC,
        f"{where}invalid OptimizationJob, nothing was submitted:\n{listed}",
        "fix each field named above (`optikube validate FILE` checks a file with the same rules,"
        " docs/api.md describes every field), then submit again",
        errors,
    )


def not_found(name: str, where: str, listing: str) -> ClientError:
    return ClientError(
        ErrorReason.NOT_FOUND,
        f"no OptimizationJob named {name!r} in {where}",
        f"check the name and the place: {listing} lists the jobs there",
    )


def already_exists(name: str, where: str, delete: str) -> ClientError:
    return ClientError(
        ErrorReason.ALREADY_EXISTS,
        f"an OptimizationJob named {name!r} already exists in {where}",
        f"get it with get({name!r}), delete it first ({delete}), or give the new job another metadata.name",
    )
