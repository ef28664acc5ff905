"""The CloudStation backend HTTP client (best-effort step updates, domains, service updates).
Imports nothing of ours but the base modules: errors, vocabulary (the step names) and redaction."""

from cloudstation.backend.client import (
    STEP_STATUSES,
    STEPS,
    BackendClient,
    BackendError,
    HealthCheck,
    NetworkEntry,
    StepStatus,
)

__all__ = [
    "STEPS",
    "STEP_STATUSES",
    "BackendClient",
    "BackendError",
    "HealthCheck",
    "NetworkEntry",
    "StepStatus",
]
