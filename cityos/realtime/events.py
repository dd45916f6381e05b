"""Live events: collected while a transaction runs, published to the broker only after it commits (a rolled-back
change never reaches a subscriber).

Channels: `store:<id>`, `vendor:<id>`, `order:<id>`, `shipment:<id>`; B2B: `company:<id>`, `quote-store:<id>`,
`quote-vendor:<id>`. Every event carries the ids a subscriber
needs to be authorized for it (tenant, store, vendor, customer, order, shipment).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cityos.realtime.broker import Broker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LiveEvent:
    channels: tuple[str, ...]
    payload: dict[str, Any]


def event(kind: str, *, tenant_id: Any, store_id: Any, order_id: Any, status: str, vendor_id: Any = None,
          vendor_order_id: Any = None, shipment_id: Any = None, customer_id: Any = None,
          **extra: Any) -> LiveEvent:
    payload = {"type": kind, "tenant_id": str(tenant_id), "store_id": str(store_id), "order_id": str(order_id),
               "vendor_id": str(vendor_id) if vendor_id else None,
               "vendor_order_id": str(vendor_order_id) if vendor_order_id else None,
               "shipment_id": str(shipment_id) if shipment_id else None, "customer_id": customer_id or None,
               "status": status, "at": datetime.now(UTC).isoformat(), **extra}
    channels = [f"store:{store_id}", f"order:{order_id}"]
    if vendor_id:
        channels.append(f"vendor:{vendor_id}")
    if shipment_id:
        channels.append(f"shipment:{shipment_id}")
    return LiveEvent(tuple(channels), payload)


def b2b_event(kind: str, *, tenant_id: Any, company_id: Any, quote_id: Any, status: str, buyer_id: str,
              store_id: Any = None, vendor_ids: str = "", **extra: Any) -> LiveEvent:
    """A quote or approval event, on `company:<id>` (the buyer and approvers), `quote-store:<id>` (the store) and
    `quote-vendor:<id>` for every vendor on the quote. It carries what a subscriber is authorized against."""
    payload = {"type": kind, "tenant_id": str(tenant_id), "company_id": str(company_id),
               "quote_id": str(quote_id) if quote_id else None,
               "store_id": str(store_id) if store_id else None, "buyer_id": buyer_id, "vendor_ids": vendor_ids,
               "status": status, "at": datetime.now(UTC).isoformat(),
               **{key: str(value) if value is not None and not isinstance(value, int) else value
                  for key, value in extra.items()}}
    channels = [f"company:{company_id}"]
    if store_id:
        channels.append(f"quote-store:{store_id}")
    channels.extend(f"quote-vendor:{vendor}" for vendor in vendor_ids.split(",") if vendor)
    return LiveEvent(tuple(channels), payload)


@dataclass
class PendingEvents:
    events: list[LiveEvent] = field(default_factory=list)

    def add(self, live_event: LiveEvent) -> None:
        self.events.append(live_event)

    def discard(self) -> None:
        self.events.clear()

    async def publish(self, broker: Broker) -> None:
        """After commit. A broker failure loses the live notification, never the data: it is logged. A failed
        publish ends the batch (the broker is down or stalled: each further attempt would cost the request another
        timeout)."""
        events, self.events = self.events, []
        pending = [(live_event, channel) for live_event in events for channel in live_event.channels]
        for index, (live_event, channel) in enumerate(pending):
            try:
                await broker.publish(channel, live_event.payload)
            except Exception:
                log.exception("publishing %s to %s failed; %d more live notifications of this operation dropped",
                              live_event.payload.get("type"), channel, len(pending) - index - 1)
                return


def customer_subscriptions_channel(tenant_id: Any, customer_id: str) -> str:
    return f"subscriptions:{tenant_id}:{customer_id}"


def vendor_subscriptions_channel(vendor_id: Any) -> str:
    return f"vendor-subscriptions:{vendor_id}"


def subscription_event(kind: str, *, tenant_id: Any, store_id: Any, subscription_id: Any, customer_id: str,
                       vendor_id: Any, status: str, **extra: Any) -> LiveEvent:
    """A change to a customer subscription (subscription.renewed, subscription.payment_failed, …), for its customer
    and the vendor whose plan it is."""
    payload = {"type": kind, "tenant_id": str(tenant_id), "store_id": str(store_id),
               "subscription_id": str(subscription_id), "customer_id": customer_id,
               "vendor_id": str(vendor_id) if vendor_id else None, "status": status,
               "at": datetime.now(UTC).isoformat(), **extra}
    channels = [customer_subscriptions_channel(tenant_id, customer_id)]
    if vendor_id:
        channels.append(vendor_subscriptions_channel(vendor_id))
    return LiveEvent(tuple(channels), payload)
