"""One process's event delivery, opened from the environment: settings → outbox → publisher.

Every command that reports to the platform (``cs stream``, ``cs up``, ``cs dispatch``) opens one
:class:`EventSession`; without ``NATS_SERVERS`` (and when not required) it has no publisher and the
run is local only. A disk so full that the outbox cannot even be opened does not stop the run
either: it goes on without publishing, :attr:`EventSession.unavailable` says why, and a warning is logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from cloudstation.errors import OutboxFullError
from cloudstation.events.ledger import DeliveryReport
from cloudstation.events.outbox import Outbox, default_state_dir
from cloudstation.events.publisher import Publisher
from cloudstation.natsconn import NatsSettings, settings_from_env

log = logging.getLogger("cloudstation.events")


class EventSession:
    """``async with EventSession(env) as events:`` then ``events.publisher`` (None when local only)."""

    def __init__(self, env: Mapping[str, str] | None = None, *, required: bool = False) -> None:
        self.env = env if env is not None else os.environ
        self.settings: NatsSettings | None = settings_from_env(self.env, required=required)
        self.outbox: Outbox | None = None
        self.publisher: Publisher | None = None
        self.report: DeliveryReport | None = None
        self.unavailable = ""  # why events cannot be journaled at all (a full disk), else ""

    @property
    def prefix(self) -> str:
        return self.settings.prefix if self.settings is not None else ""

    @property
    def secrets(self) -> list[str]:
        """Secrets of the connection itself (the NKey seed, URL credentials), for the redaction set."""
        return self.settings.secrets if self.settings is not None else []

    async def __aenter__(self) -> EventSession:
        if self.settings is not None:
            try:
                self.outbox = Outbox(default_state_dir(self.env))
            except OutboxFullError as exc:
                self.unavailable = str(exc)
                log.warning("%s: the events of this run can be neither kept nor published", exc)
                return self
            self.publisher = Publisher(self.settings, self.outbox)
            await self.publisher.start()
        return self

    async def close(self, timeout: float | None = None) -> DeliveryReport | None:
        """Wait (bounded; default ``CS_DELIVERY_TIMEOUT``) for delivery, then close. Idempotent."""
        if self.publisher is not None and self.report is None:
            self.report = await self.publisher.close(timeout)
            if not self.report.complete:
                reason = f" ({self.report.errors[0]})" if self.report.errors else ""
                log.warning(
                    "%d event(s) not delivered yet%s; kept in %s; `cs events flush` delivers them",
                    self.report.undelivered,
                    reason,
                    self.report.outbox_path,
                )
        if self.outbox is not None:
            self.outbox.close()
            self.outbox = None
        return self.report

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
