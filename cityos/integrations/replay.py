"""Replaying a recorded webhook event (an admin's `replayWebhookEvent`): handled again by its provider's webhook,
through the same inbox, exactly as a delivery."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from cityos.domain.platform.inbox import Received
from cityos.integrations.fleetbase import webhooks as fleetbase
from cityos.integrations.payload import webhooks as payload
from cityos.integrations.stripe import webhooks as stripe
from cityos.services import Services

Processor = Callable[..., Awaitable[Received]]
PROCESSORS: dict[str, Processor] = {"stripe": stripe.process_event, "fleetbase": fleetbase.process_event,
                                   "payload": payload.process_event}


async def replay_event(services: Services, provider: str, payload: dict[str, Any],
                       tenant_id: uuid.UUID | None) -> Received:
    return await PROCESSORS[provider](services, payload, replay=True, tenant_id=tenant_id)
