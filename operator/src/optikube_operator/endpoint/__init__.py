"""The progress endpoint (Contract 3): trainers push progress messages here, authenticated.

One component for both backends; only the authenticator differs: random bearer tokens in local
mode (`BearerTokens`), the apiserver's TokenReview in the cluster (`optikube_operator.kube`).
"""

from optikube_operator.endpoint.auth import Authenticator, BearerTokens, Caller, RunKey
from optikube_operator.endpoint.server import PROGRESS_PATH, ProgressEndpoint, ProgressRejectedError

__all__ = [
    "PROGRESS_PATH",
    "Authenticator",
    "BearerTokens",
    "Caller",
    "ProgressEndpoint",
    "ProgressRejectedError",
    "RunKey",
]
