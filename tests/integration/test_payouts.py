"""Commission ledger and exactly-once vendor payouts against the real database and the fake Stripe."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from sqlalchemy import text

from cityos.db.engines import create_app_engine
from cityos.integrations.stripe.client import create_stripe_client
from cityos.jobs.payouts import process_vendor_payouts
from tests.commerce_flow import OPS, WEBHOOK, Shopper, paid_order, send_event, shop
from tests.conftest import GraphQLClient, TenantWorld, Tokens
from tests.fakes.stripe import FakeStripe

__all__ = ["shop"]


class Crash(Exception):
    pass


async def ledger(owner_engine, tenant) -> list[tuple]:
    async with owner_engine.connect() as connection:
        return list((await connection.execute(text(
            "select v.handle, t.kind, t.line_amount, t.commission_amount, t.vendor_amount "
            "from commission_transaction t join vendor v on v.id = t.vendor_id where t.tenant_id = :t "
            "order by v.handle, t.kind"),
            {"t": tenant})).all())


async def connect_vendor(owner_engine, stripe: FakeStripe, tenant, handle: str) -> str:
    account = stripe.oauth_codes.pop(stripe.authorize())  # an enabled connected account
    async with owner_engine.begin() as connection:
        await connection.execute(text("update vendor set stripe_account_id = :a, payouts_enabled = true, "
                                      "charges_enabled = true where tenant_id = :t and handle = :h"),
                                 {"a": account, "t": tenant, "h": handle})
        await connection.execute(text("update commission_transaction set available_at = now() - interval '1 second'"
                                      " where tenant_id = :t"), {"t": tenant})
    return account


@pytest.fixture
def stripe_client(settings):
    """The app's Stripe client (the real SDK) pointed at the fake."""
    return create_stripe_client(settings)


@pytest.fixture
async def app_engine(database_url: str):
    engine = create_app_engine(database_url, pool_size=4)
    yield engine
    await engine.dispose()


async def test_a_paid_order_writes_one_sale_per_vendor_line(gql: GraphQLClient, http: httpx.AsyncClient,
                                                            shop: TenantWorld, fake_stripe: FakeStripe,
                                                            owner_engine, tokens: Tokens) -> None:
    async with owner_engine.begin() as connection:  # Lumen Home pays 10 % + 30 cents a line, others the default
        await connection.execute(text("insert into commission_rule (tenant_id, id, scope, scope_id, percentage, "
                                      "flat_per_line) select :t, gen_random_uuid(), 'vendor', id, 10, 30 from vendor "
                                      "where tenant_id = :t and handle = 'lumen-home'"), {"t": shop.tenant_id})
    shopper = Shopper(gql, shop)
    order = await paid_order(shopper, http, fake_stripe, {"LU-CANDLE": 1, "CP-HONEY-12": 2})
    assert await ledger(owner_engine, shop.tenant_id) == [
        ("cedar-pantry", "sale", 2800, 70, 2730),  # 2.5 % default of 28.00
        ("lumen-home", "sale", 2400, 270, 2130),  # 10 % + 0.30
    ]
    admin = tokens("store_admin", shop, stores=["store-0"])
    body = await gql(OPS["admin/UpdateOrderStatus"], {"id": order, "status": "CANCELED"}, token=admin)
    assert body["data"]["updateOrderStatus"]["status"] == "CANCELED"
    entries = await ledger(owner_engine, shop.tenant_id)
    assert ("lumen-home", "reversal", -2400, -270, -2130) in entries
    assert sum(entry[4] for entry in entries) == 0


async def test_payouts_transfer_once_and_survive_a_crash(gql: GraphQLClient, http: httpx.AsyncClient,
                                                         shop: TenantWorld, fake_stripe: FakeStripe, owner_engine,
                                                         app_engine, stripe_client) -> None:
    shopper = Shopper(gql, shop)
    await paid_order(shopper, http, fake_stripe, {"CP-COFFEE-1LB": 2, "LU-CANDLE": 1})
    account = await connect_vendor(owner_engine, fake_stripe, shop.tenant_id, "cedar-pantry")
    transfers_before = set(fake_stripe.transfers)

    async def crash(payout_id: uuid.UUID, result) -> None:
        assert result.transfer_id is not None
        # No row is locked around the call to Stripe (DESIGN §3): another transaction may lock the payout now.
        async with owner_engine.begin() as other:
            locked = (await other.execute(text("select id from payout where id = :id for update nowait"),
                                          {"id": payout_id})).scalar_one()
        assert locked == payout_id
        raise Crash  # killed after Stripe made the transfer, before we recorded it

    with pytest.raises(Crash):
        await process_vendor_payouts(app_engine, stripe_client, 100, [shop.tenant_id], after_transfer=crash)
    made = set(fake_stripe.transfers) - transfers_before
    assert len(made) == 1
    async with owner_engine.connect() as connection:
        pending = (await connection.execute(text("select status, stripe_transfer_id from payout where tenant_id = :t"),
                                            {"t": shop.tenant_id})).all()
    assert pending == [("pending", None)]

    outcome = await process_vendor_payouts(app_engine, stripe_client, 100, [shop.tenant_id])
    assert "1 paid" in outcome
    assert set(fake_stripe.transfers) - transfers_before == made  # the same key → the same transfer
    transfer = fake_stripe.transfers[made.pop()]
    assert transfer["destination"] == account
    assert transfer["amount"] == 3705  # 2 × 19.00 less 2.5 %
    async with owner_engine.connect() as connection:
        payouts = (await connection.execute(text("select status, amount, stripe_transfer_id from payout "
                                                 "where tenant_id = :t"), {"t": shop.tenant_id})).all()
        linked = (await connection.execute(text("select count(*) from payout_transaction_link where tenant_id = :t"),
                                           {"t": shop.tenant_id})).scalar_one()
    assert payouts == [("paid", 3705, transfer["id"])]
    assert linked == 1
    again = await process_vendor_payouts(app_engine, stripe_client, 100, [shop.tenant_id])
    assert again.startswith("0 new payout(s)")


async def test_two_runners_at_once_make_one_transfer_per_payout(gql: GraphQLClient, http: httpx.AsyncClient,
                                                                shop: TenantWorld, fake_stripe: FakeStripe,
                                                                owner_engine, app_engine, stripe_client) -> None:
    await paid_order(Shopper(gql, shop), http, fake_stripe, {"LU-THROW-OAT": 1})
    await connect_vendor(owner_engine, fake_stripe, shop.tenant_id, "lumen-home")
    before = set(fake_stripe.transfers)
    await asyncio.gather(*(process_vendor_payouts(app_engine, stripe_client, 100, [shop.tenant_id]) for _ in range(2)))
    async with owner_engine.connect() as connection:
        payouts = (await connection.execute(text("select count(*) from payout where tenant_id = :t"),
                                            {"t": shop.tenant_id})).scalar_one()
    assert payouts == 1
    assert len(set(fake_stripe.transfers) - before) == 1


async def test_a_refused_transfer_fails_the_payout_and_releases_its_entries(gql: GraphQLClient,
                                                                             http: httpx.AsyncClient,
                                                                             shop: TenantWorld,
                                                                             fake_stripe: FakeStripe, owner_engine,
                                                                             app_engine, stripe_client) -> None:
    await paid_order(Shopper(gql, shop), http, fake_stripe, {"NW-TEE-M": 1})
    await connect_vendor(owner_engine, fake_stripe, shop.tenant_id, "northwind-outfitters")
    balance, fake_stripe.platform_balance = fake_stripe.platform_balance, 0
    try:
        assert "1 failed" in await process_vendor_payouts(app_engine, stripe_client, 100, [shop.tenant_id])
    finally:
        fake_stripe.platform_balance = balance
    async with owner_engine.connect() as connection:
        failed = (await connection.execute(text("select status, failure_reason from payout where tenant_id = :t"),
                                           {"t": shop.tenant_id})).one()
    assert failed.status == "failed"
    assert failed.failure_reason.startswith("balance_insufficient")
    released = await process_vendor_payouts(app_engine, stripe_client, 100, [shop.tenant_id])
    assert "1 paid" in released  # the failed payout's entries were released



async def test_connect_events_in_any_order(gql: GraphQLClient, http: httpx.AsyncClient, shop: TenantWorld,
                                           fake_stripe: FakeStripe, owner_engine, app_engine, stripe_client) -> None:
    await paid_order(Shopper(gql, shop), http, fake_stripe, {"CP-HONEY-32": 1})
    account = await connect_vendor(owner_engine, fake_stripe, shop.tenant_id, "cedar-pantry")
    now = int(time.time())
    newer = {"id": account, "object": "account", "charges_enabled": True, "payouts_enabled": False,
             "details_submitted": True, "requirements": {"currently_due": ["external_account"], "past_due": [],
                                                         "eventually_due": [], "disabled_reason": None}}
    older = {**newer, "payouts_enabled": True, "requirements": {"currently_due": []}}
    for body, created in ((newer, now), (older, now - 60)):
        payload = fake_stripe.event("account.updated", body, created=created)
        response = await http.post(WEBHOOK, content=payload, headers={"stripe-signature": fake_stripe.sign(payload)})
        assert response.status_code == 200, response.text
    async with owner_engine.connect() as connection:
        vendor = (await connection.execute(text("select payouts_enabled, requirements from vendor where "
                                                "stripe_account_id = :a"), {"a": account})).one()
    assert vendor.payouts_enabled is False  # the older event did not undo the newer one
    assert vendor.requirements["currently_due"] == ["external_account"]

    async with owner_engine.begin() as connection:
        await connection.execute(text("update vendor set payouts_enabled = true where stripe_account_id = :a"),
                                 {"a": account})
    await process_vendor_payouts(app_engine, stripe_client, 100, [shop.tenant_id])
    async with owner_engine.connect() as connection:
        payout = (await connection.execute(text("select id, stripe_transfer_id from payout where tenant_id = :t"),
                                           {"t": shop.tenant_id})).one()
    transfer = fake_stripe.transfers[payout.stripe_transfer_id]
    reversed_event = await send_event(http, fake_stripe, "transfer.reversed", {**transfer, "reversed": True})
    late_created = await send_event(http, fake_stripe, "transfer.created", transfer)  # arrives after the reversal
    assert reversed_event.json()["outcome"].startswith("payout reversed")
    assert late_created.json()["outcome"] == "ignored: payout already reversed"
    async with owner_engine.connect() as connection:
        status = (await connection.execute(text("select status from payout where id = :p"),
                                           {"p": payout.id})).scalar_one()
        links = (await connection.execute(text("select count(*) from payout_transaction_link where payout_id = :p"),
                                          {"p": payout.id})).scalar_one()
    assert (status, links) == ("reversed", 0)
    repaid = await process_vendor_payouts(app_engine, stripe_client, 100, [shop.tenant_id])
    assert "1 paid" in repaid  # released by the reversal, paid again
    failed = fake_stripe.event("payout.failed", {"id": "po_1", "object": "payout", "status": "failed",
                                                 "failure_code": "account_closed",
                                                 "failure_message": "The bank account has been closed"},
                               account=account)
    response = await http.post(WEBHOOK, content=failed, headers={"stripe-signature": fake_stripe.sign(failed)})
    assert response.json()["outcome"] == "bank payout failed"
