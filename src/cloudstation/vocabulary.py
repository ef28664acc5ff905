"""The words every room shares: a deployment's steps, its types, and why a job is destroyed.

This module is the base of the import graph (it imports nothing of ours), so the config model, the
plugins, the lifecycle, the wire contract and the backend client all name a step the same way.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal, get_args


class Step(StrEnum):
    """A step of a deployment, named as the config block, the backend step update and the log phase say it.

    ``clone`` is a dispatch step only (fetching the source); the other four are the lifecycle's
    components (:data:`COMPONENTS`): each is a block of ``cloudstation.hcl`` that selects a plugin.
    A member is a ``str``: it compares equal to, formats and encodes as its value.
    """

    CLONE = "clone"
    BUILD = "build"
    REGISTRY = "registry"
    DEPLOY = "deploy"
    RELEASE = "release"


#: The lifecycle's steps, in lifecycle order: each is a component block of an app (and a plugin role).
COMPONENTS: Final[tuple[Step, ...]] = (Step.BUILD, Step.REGISTRY, Step.DEPLOY, Step.RELEASE)
#: The components every app must have.
REQUIRED_COMPONENTS: Final[frozenset[Step]] = frozenset({Step.BUILD, Step.DEPLOY})

#: The phase tags of ``build.log`` lines: every step, plus ``init`` (before the first step) and
#: ``detect`` (port detection after a build). A producer may use others; these are the documented ones.
PHASES: Final[tuple[str, ...]] = ("init", *(step.value for step in Step), "detect")

#: ``type`` of ``deployment.succeeded`` / ``deployment.failed``: a repository build or a ready image.
DeploymentType = Literal["git_repo", "image"]
DEPLOYMENT_TYPES: Final[tuple[DeploymentType, ...]] = get_args(DeploymentType)

#: The reasons the platform gives for ``destroy-job-pack`` (and ``job.destroyed``). Any other short,
#: non-empty reason is passed through too: the platform may add reasons before ``cs`` knows them.
DESTROY_REASONS: Final[tuple[str, ...]] = (
    "delete",
    "upgrade_volume",
    "migrate_volume",
    "suspend_account",
    "pause_service",
)
