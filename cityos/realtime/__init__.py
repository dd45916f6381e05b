"""Fan-out of live events: one Broker interface, in-process or Redis pub/sub."""

from cityos.realtime.broker import (
    Broker,
    InProcessBroker,
    RedisBroker,
    SubscriberTooSlow,
    Subscription,
    create_broker,
)

__all__ = ["Broker", "InProcessBroker", "RedisBroker", "SubscriberTooSlow", "Subscription", "create_broker"]
