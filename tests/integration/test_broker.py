"""The broker seam against a real redis-server, and in-process."""

from __future__ import annotations

import asyncio

import pytest

from cityos.realtime import InProcessBroker, RedisBroker, SubscriberTooSlow, create_broker


async def test_in_process_fan_out() -> None:
    broker = InProcessBroker()
    first, second = await broker.subscribe("store:1"), await broker.subscribe("store:1")
    other = await broker.subscribe("store:2")
    await broker.publish("store:1", {"type": "order.created", "id": 1})
    assert await first.get() == {"type": "order.created", "id": 1}
    assert await second.get() == {"type": "order.created", "id": 1}
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(other.get(), 0.05)
    await first.close()
    assert broker.subscriber_count("store:1") == 1


async def test_a_slow_subscriber_is_cut_off() -> None:
    broker = InProcessBroker(max_queue=3)
    subscription = await broker.subscribe("c")
    for index in range(5):
        await broker.publish("c", {"n": index})
    with pytest.raises(SubscriberTooSlow):
        await subscription.get()


async def test_redis_delivers_across_broker_instances(redis_url: str) -> None:
    publisher, listener = RedisBroker(redis_url), RedisBroker(redis_url)
    try:
        async with await listener.subscribe("vendor:7") as subscription:
            await asyncio.sleep(0.1)  # the SUBSCRIBE reaches redis
            await publisher.publish("vendor:7", {"type": "shipment.updated", "status": "in_transit"})
            await publisher.publish("vendor:8", {"type": "not for us"})
            event = await asyncio.wait_for(subscription.get(), 5)
            assert event == {"type": "shipment.updated", "status": "in_transit"}
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(subscription.get(), 0.2)
        assert listener.subscriber_count("vendor:7") == 0
        assert await listener.ping()
    finally:
        await publisher.close()
        await listener.close()


def test_the_factory_chooses_by_redis_url() -> None:
    assert isinstance(create_broker(None), InProcessBroker)
    assert isinstance(create_broker("redis://127.0.0.1:1/0"), RedisBroker)
