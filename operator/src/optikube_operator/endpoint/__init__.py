"""The report endpoint (Contract 3): trainers push progress events here, authenticated.

One component for both executors; only the authenticator differs: random bearer tokens in local
mode (`BearerTokens`), the apiserver's TokenReview in the cluster (`optikube_operator.kube`).
"""

from optikube_operator.endpoint.auth import Authenticator, BearerTokens, Caller, RunKey
from optikube_operator.endpoint.server import REPORT_PATH, EventRejectedError, ReportEndpoint

__all__ = [
    "REPORT_PATH",
    "Authenticator",
    "BearerTokens",
    "Caller",
    "EventRejectedError",
    "ReportEndpoint",
    "RunKey",
]
