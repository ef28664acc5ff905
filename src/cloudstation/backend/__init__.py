"""The CloudStation backend HTTP client (best-effort step updates, domains, service updates).
Imports nothing of ours but :mod:`cloudstation.errors`."""

from cloudstation.backend.client import (
    STEP_STATUSES,
    STEPS,
    BackendClient,
    BackendError,
    HealthCheck,
    NetworkEntry,
    Step,
    StepStatus,
)
from cloudstation.backend.redaction import install_log_redaction, redact_query_token

__all__ = [
    "STEPS",
    "STEP_STATUSES",
    "BackendClient",
    "BackendError",
    "HealthCheck",
    "NetworkEntry",
    "Step",
    "StepStatus",
    "install_log_redaction",
    "redact_query_token",
]
