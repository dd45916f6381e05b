"""Arguments of the platform fields: the outbox, the webhook inbox, checkout attempts."""

from __future__ import annotations

from typing import Annotated

import strawberry

from cityos.graphql.core.values import OutboxStatus

WebhookStatus = Annotated[str | None, strawberry.argument(description="processed | ignored | refused | failed")]
WebhookEventId = Annotated[strawberry.ID, strawberry.argument(description="The WebhookEvent's id.")]
AttemptStatus = Annotated[str | None, strawberry.argument(
    description="pending | superseded | canceled | ordered | refund_pending | refunded")]
OutboxIdArg = Annotated[strawberry.ID, strawberry.argument(description="Global id of the outbox message.")]
OutboxStatusArg = Annotated[OutboxStatus | None, strawberry.argument(description="Only messages in this status.")]
