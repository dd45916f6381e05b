"""Unexpected errors reach Sentry through the real sentry-sdk (a fake ingestion endpoint stands for sentry.io), while
the client sees only INTERNAL_SERVER_ERROR with a fixed message."""

from __future__ import annotations

import asyncio

import pytest
import sentry_sdk

from cityos.config import Settings
from cityos.graphql.tenancy.types import Store
from tests.conftest import TenantWorld, app_client, served
from tests.fakes.sentry import FakeSentry


async def test_an_unexpected_error_is_reported_to_sentry_and_masked(settings: Settings, world: TenantWorld,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_row: object) -> Store:
        raise RuntimeError("the store row could not be read (a defect)")

    async with served(FakeSentry()) as sentry:
        reporting = settings.model_copy(update={"SENTRY_DSN": sentry.dsn(), "CITYOS_COMPILED_READS": False})
        try:
            async with app_client(reporting) as client:
                monkeypatch.setattr(Store, "from_row", staticmethod(broken))
                response = await client.post("/graphql", json={"query": "{ currentStore { name } }"},
                                             headers={"x-publishable-api-key": world.key})
                sentry_sdk.flush(timeout=5)
                for _ in range(50):
                    if sentry.events:
                        break
                    await asyncio.sleep(0.1)
        finally:
            sentry_sdk.init()  # no DSN: the SDK is off again for the rest of the session
    body = response.json()
    assert body["data"] == {"currentStore": None}
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert body["errors"][0]["message"] == "Unexpected error."
    assert "defect" not in response.text
    [event] = [event for event in sentry.events if event.get("exception")]  # once, not once per integration
    assert event["logentry"]["formatted"] == "unexpected error in ['currentStore']"
    [exception] = event["exception"]["values"][-1:]
    assert (exception["type"], exception["value"]) == ("RuntimeError", "the store row could not be read (a defect)")
    assert event["environment"] == settings.CITYOS_ENV.value
