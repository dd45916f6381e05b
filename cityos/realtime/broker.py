"""The broker seam.

`publish(channel, event)` delivers a JSON-able dict to every current subscriber of the channel, in this process
(InProcessBroker) or in every process connected to the same Redis (RedisBroker). Each subscription has a
bounded queue; a subscriber that falls more than `max_queue` events behind is cut off with SubscriberTooSlow
rather than letting memory grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger(__name__)
DEFAULT_MAX_QUEUE = 256


class SubscriberTooSlow(Exception):
    """The subscriber's queue overflowed; it missed events and must resubscribe."""


class Subscription:
    def __init__(self, broker: Broker, channel: str, max_queue: int) -> None:
        self.broker = broker
        self.channel = channel
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(max_queue)
        self.overflowed = False
        self.closed = False

    def deliver(self, event: dict[str, Any]) -> None:
        if self.overflowed or self.closed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True  # the queue is full, so the reader is not waiting: it sees this next

    async def get(self) -> dict[str, Any]:
        if self.overflowed:
            raise SubscriberTooSlow(f"subscriber to {self.channel} fell more than {self._queue.maxsize} behind")
        return await self._queue.get()

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            yield await self.get()

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.broker._unsubscribe(self)

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()


class Broker(ABC):
    def __init__(self, max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        self.max_queue = max_queue
        self._subscribers: dict[str, set[Subscription]] = defaultdict(set)

    @abstractmethod
    async def publish(self, channel: str, event: dict[str, Any]) -> None: ...

    async def subscribe(self, channel: str) -> Subscription:
        subscription = Subscription(self, channel, self.max_queue)
        first = not self._subscribers[channel]
        self._subscribers[channel].add(subscription)
        if first:
            await self._on_first_subscriber(channel)
        return subscription

    async def _unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.channel)
        if not subscribers:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._subscribers[subscription.channel]
            await self._on_last_subscriber_left(subscription.channel)

    def _fan_out(self, channel: str, event: dict[str, Any]) -> None:
        for subscription in list(self._subscribers.get(channel, ())):
            subscription.deliver(event)

    def subscriber_count(self, channel: str) -> int:
        return len(self._subscribers.get(channel, ()))

    async def _on_first_subscriber(self, channel: str) -> None:
        return None

    async def _on_last_subscriber_left(self, channel: str) -> None:
        return None

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


class InProcessBroker(Broker):
    """Single-process fan-out, the embedded default when REDIS_URL is not set."""

    async def publish(self, channel: str, event: dict[str, Any]) -> None:
        self._fan_out(channel, orjson.loads(orjson.dumps(event)))  # same JSON round trip as Redis


REDIS_TIMEOUT = 2.0


class RedisBroker(Broker):
    """Redis pub/sub across processes: one PUBLISH per event, one shared SUBSCRIBE connection per process,
    fanned out locally to this process's subscribers."""

    def __init__(self, url: str, max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        super().__init__(max_queue)
        # Bounded waits: a stalled Redis costs a request at most REDIS_TIMEOUT (the live event is then lost and
        # logged; the data it announced is already committed).
        # No retries: redis-py retries a timed-out command three times by default, which tripled that bound.
        self.redis = aioredis.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT,
                                       retry=Retry(NoBackoff(), 0))
        self._pubsub = self.redis.pubsub()
        self._reader: asyncio.Task[None] | None = None

    async def publish(self, channel: str, event: dict[str, Any]) -> None:
        await self.redis.publish(channel, orjson.dumps(event))

    async def _on_first_subscriber(self, channel: str) -> None:
        await self._pubsub.subscribe(channel)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="redis-broker-reader")

    async def _on_last_subscriber_left(self, channel: str) -> None:
        with contextlib.suppress(aioredis.ConnectionError):
            await self._pubsub.unsubscribe(channel)

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("redis broker: reading failed; retrying")
                await asyncio.sleep(0.5)
                continue
            if message is None:
                if not self._subscribers:
                    await asyncio.sleep(0.05)
                continue
            channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
            try:
                event = orjson.loads(message["data"])
            except orjson.JSONDecodeError:
                log.warning("redis broker: dropped a malformed message on %s", channel)
                continue
            self._fan_out(channel, event)

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.redis.aclose()


def create_broker(redis_url: str | None, max_queue: int = DEFAULT_MAX_QUEUE) -> Broker:
    return RedisBroker(redis_url, max_queue) if redis_url else InProcessBroker(max_queue)
