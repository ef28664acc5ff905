"""Fetching a deployment's source: ``git`` clone of ``owner/repo`` at a branch, or a ``local_upload``
tar archive downloaded and extracted safely. Imports nothing of ours but errors and redaction.
"""

from cloudstation.sources.archive import extract_tar_safely
from cloudstation.sources.commands import CollectingRunner, CommandRunner, OutputLine
from cloudstation.sources.errors import (
    BranchNotFoundError,
    GitNotInstalledError,
    InvalidSourceError,
    SourceAuthError,
    SourceError,
    UnsafeArchiveError,
)
from cloudstation.sources.git import PROVIDERS, GitProvider, clone_repository, remote_url
from cloudstation.sources.upload import download, fetch_upload

__all__ = [
    "PROVIDERS",
    "BranchNotFoundError",
    "CollectingRunner",
    "CommandRunner",
    "GitNotInstalledError",
    "GitProvider",
    "InvalidSourceError",
    "OutputLine",
    "SourceAuthError",
    "SourceError",
    "UnsafeArchiveError",
    "clone_repository",
    "download",
    "extract_tar_safely",
    "fetch_upload",
    "remote_url",
]
