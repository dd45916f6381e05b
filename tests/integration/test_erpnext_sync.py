"""ERPNext against the fake (tests/fakes/erpnext.py) through our real client: a paid order becomes a Customer, a
submitted Sales Invoice (item and tax rows) and a Payment Entry through the outbox; each succeeded refund (partial or
whole) a credit note of its lines, canceled if Stripe fails the refund later; every document once whatever is
retried or caught up; ERPNext down → retries, then a dead letter the admin sees."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

from cityos.config import Settings
from cityos.db.engines import create_app_engine
from cityos.domain.accounting.service import TOPICS
from cityos.jobs.erpnext import sync_to_erpnext
from cityos.jobs.outbox import dispatch_outbox
from cityos.jobs.registry import JOBS, JobContext
from tests.commerce_flow import OPS, Shopper, paid_order, send_event, shop
from tests.conftest import GraphQLClient, TenantWorld, Tokens, app_client, served
from tests.fakes.erpnext import FakeERPNext
from tests.fakes.stripe import FakeStripe

__all__ = ["shop"]
KEY, SECRET = "erpkey1234567890", "erpsecret123456"  # ERPNext issues 15-character secrets
BANK = "Stripe Clearing - CO"
LINES = "query OrderLines($id: ID!) { order(id: $id) { lines { id sku quantity } } }"


@pytest.fixture(scope="session")
async def fake_erpnext() -> AsyncIterator[FakeERPNext]:
    async with served(FakeERPNext(KEY, SECRET, bank_accounts=(BANK,))) as fake:
        yield fake


@pytest.fixture
def erp_settings(settings: Settings, fake_erpnext: FakeERPNext) -> Settings:
    return settings.model_copy(update={"ERPNEXT_URL": fake_erpnext.base_url, "ERPNEXT_API_KEY": KEY,
                                       "ERPNEXT_API_SECRET": SECRET, "ERPNEXT_PAYMENT_ACCOUNT": BANK,
                                       "ERPNEXT_TAX_ACCOUNT": "VAT - CO"})


@pytest.fixture
async def erp_api(erp_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API with ERPNext configured (the session's has none): paid orders write their accounting."""
    async with app_client(erp_settings) as client:
        yield client


@pytest.fixture
async def app_engine(database_url: str):
    engine = create_app_engine(database_url, pool_size=4)
    yield engine
    await engine.dispose()


async def rows(owner_engine, sql: str, **params) -> list:
    async with owner_engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).all())


async def dispatch(app_engine, settings) -> str:
    async with httpx.AsyncClient() as client:
        return await dispatch_outbox(app_engine, settings, client, only=TOPICS)


async def order_of(owner_engine, world: TenantWorld):
    return (await rows(owner_engine, "select * from orders where tenant_id = :t", t=world.tenant_id))[-1]


def mine(fake: FakeERPNext, doctype: str, order_id: uuid.UUID, prefix: str) -> list[dict]:
    return fake.documents(doctype, cityos_id=f"{prefix}:{order_id}")


async def test_a_paid_order_is_invoiced_paid_and_credited_once(
        erp_api: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe, fake_erpnext: FakeERPNext,
        owner_engine, app_engine, erp_settings: Settings, tokens: Tokens) -> None:
    await paid_order(Shopper(GraphQLClient(erp_api), shop), erp_api, fake_stripe, {"LU-CANDLE": 2, "CP-HONEY-12": 1})
    order = await order_of(owner_engine, shop)
    assert await rows(owner_engine, "select topic, status from outbox where tenant_id = :t and topic like 'erpnext%'",
                      t=shop.tenant_id) == [("erpnext.sync_order", "pending")]
    inserts = len(fake_erpnext.inserts)
    assert (await dispatch(app_engine, erp_settings)).startswith("1 sent")

    customers = fake_erpnext.documents("Customer", cityos_id=f"customer:{shop.tenant_id}:guest:{order.email}")
    assert len(customers) == 1 and customers[0]["customer_type"] == "Individual"
    [invoice] = mine(fake_erpnext, "Sales Invoice", order.id, "order")
    lines = await rows(owner_engine, "select sku, quantity, unit_price from order_line where order_id = :o",
                       o=order.id)
    assert invoice["docstatus"] == 1 and invoice["customer"] == customers[0]["name"]
    assert invoice["currency"] == "USD" and invoice["po_no"] == str(order.id)
    assert sorted((item["item_code"], item["qty"], Decimal(str(item["rate"]))) for item in invoice["items"]) == sorted(
        (sku, quantity, Decimal(price) / 100) for sku, quantity, price in lines)
    assert order.tax_total > 0 and order.shipping_total > 0
    assert [(tax["charge_type"], tax["account_head"], Decimal(str(tax["tax_amount"]))) for tax in invoice["taxes"]] == [
        ("Actual", "VAT - CO", Decimal(order.tax_total) / 100),
        ("Actual", erp_settings.ERPNEXT_SHIPPING_ACCOUNT, Decimal(order.shipping_total) / 100)]
    assert Decimal(str(invoice["grand_total"])) == Decimal(order.total) / 100
    [payment] = mine(fake_erpnext, "Payment Entry", order.id, "payment")
    assert payment["docstatus"] == 1 and payment["payment_type"] == "Receive"
    assert payment["reference_no"] == order.payment_intent_id and payment["paid_to"] == BANK
    assert payment["references"] == [{"reference_doctype": "Sales Invoice", "reference_name": invoice["name"],
                                      "allocated_amount": float(Decimal(order.total) / 100)}]
    assert fake_erpnext.documents("Sales Invoice", name=invoice["name"])[0]["status"] == "Paid"
    assert len(fake_erpnext.inserts) - inserts == 3

    # The catch-up job sees the same order: looked up by our ids, nothing is created again.
    async with httpx.AsyncClient() as client:
        caught_up = await sync_to_erpnext(app_engine, erp_settings, client, tenant_ids=[shop.tenant_id])
    assert caught_up.startswith("1 order(s) requested; 1 sent")
    assert len(fake_erpnext.inserts) - inserts == 3

    # A refund: a credit note against the invoice, once.
    admin = tokens("tenant_admin", shop)
    global_id = (await GraphQLClient(erp_api)("{ orders(first: 1) { nodes { id } } }", token=admin))
    refunded = await GraphQLClient(erp_api)(OPS["admin/UpdateOrderStatus"], {
        "id": global_id["data"]["orders"]["nodes"][0]["id"], "status": "REFUNDED"}, token=admin)
    assert refunded["data"]["updateOrderStatus"]["status"] == "REFUNDED", refunded
    await dispatch(app_engine, erp_settings)
    [refund] = await rows(owner_engine, "select id, status, amount from refund where order_id = :o", o=order.id)
    assert refund.status == "succeeded" and refund.amount == order.total  # the whole order: one refund
    [credit] = mine(fake_erpnext, "Sales Invoice", refund.id, "refund")
    assert mine(fake_erpnext, "Sales Invoice", order.id, "refund") == []  # no whole-order note besides
    assert credit["is_return"] == 1 and credit["return_against"] == invoice["name"] and credit["docstatus"] == 1
    assert Decimal(str(credit["grand_total"])) == -Decimal(order.total) / 100
    assert fake_erpnext.documents("Sales Invoice", name=invoice["name"])[0]["status"] == "Credit Note Issued"
    async with httpx.AsyncClient() as client:
        await sync_to_erpnext(app_engine, erp_settings, client, tenant_ids=[shop.tenant_id])
    assert len(mine(fake_erpnext, "Sales Invoice", refund.id, "refund")) == 1
    assert len(fake_erpnext.inserts) - inserts == 4


async def test_each_succeeded_partial_refund_is_one_credit_note_of_its_lines(
        erp_api: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe, fake_erpnext: FakeERPNext,
        owner_engine, app_engine, erp_settings: Settings, tokens: Tokens) -> None:
    gql, admin = GraphQLClient(erp_api), tokens("tenant_admin", shop)
    order_gid = await paid_order(Shopper(gql, shop), erp_api, fake_stripe, {"LU-CANDLE": 2, "CP-HONEY-12": 1})
    order = await order_of(owner_engine, shop)
    assert (await dispatch(app_engine, erp_settings)).startswith("1 sent")
    [invoice] = mine(fake_erpnext, "Sales Invoice", order.id, "order")
    lines = (await gql(LINES, {"id": order_gid}, token=admin))["data"]["order"]["lines"]
    candle, honey = (next(line for line in lines if line["sku"] == sku) for sku in ("LU-CANDLE", "CP-HONEY-12"))
    unit_price = dict(await rows(owner_engine, "select sku, unit_price from order_line where order_id = :o",
                                 o=order.id))

    async def refund(input: dict) -> dict:
        return await gql(OPS["admin/RefundOrder"], {"orderId": order_gid, "input": input}, token=admin)

    async def notes() -> list[dict]:
        return [doc for doc in fake_erpnext.documents("Sales Invoice")
                if doc.get("return_against") == invoice["name"]]

    # One candle: one note with exactly that unit and its tax share, negated.
    first = await refund({"lines": [{"lineId": candle["id"], "quantity": 1}]})
    assert first["data"]["refundOrder"]["status"] == "SUCCEEDED", first
    [(first_id, first_amount)] = await rows(owner_engine, "select id, amount from refund where order_id = :o",
                                            o=order.id)
    [(amount, tax)] = await rows(owner_engine, "select amount, tax_amount from refund_line where refund_id = :r",
                                 r=first_id)
    assert tax > 0 and amount == unit_price["LU-CANDLE"]
    assert (await dispatch(app_engine, erp_settings)).startswith("1 sent")
    [note] = await notes()
    assert note["cityos_id"] == f"refund:{first_id}" and note["is_return"] == 1 and note["docstatus"] == 1
    assert [(item["item_code"], item["qty"], Decimal(str(item["rate"]))) for item in note["items"]] == [
        ("LU-CANDLE", -1, Decimal(amount) / 100)]
    assert [(tax_row["account_head"], Decimal(str(tax_row["tax_amount"]))) for tax_row in note["taxes"]] == [
        ("VAT - CO", -Decimal(tax) / 100)]
    assert Decimal(str(note["grand_total"])) == -Decimal(first_amount) / 100

    # A refund Stripe refuses: failed, no note.
    fake_stripe.failures.append((400, "invalid_request_error", "charge_disputed", "This charge is disputed."))
    refused = await refund({"lines": [{"lineId": honey["id"], "quantity": 1}]})
    assert refused.get("errors"), refused
    await dispatch(app_engine, erp_settings)
    assert len(await notes()) == 1

    # The honey and the shipping: a second note.
    second = await refund({"lines": [{"lineId": honey["id"], "quantity": 1}], "refundShipping": True})
    assert second["data"]["refundOrder"]["status"] == "SUCCEEDED", second
    assert (await dispatch(app_engine, erp_settings)).startswith("1 sent")
    assert len(await notes()) == 2
    [second_note] = [doc for doc in await notes() if doc["name"] != note["name"]]
    assert [(item["item_code"], item["qty"]) for item in second_note["items"]] == [("CP-HONEY-12", -1)]
    [(second_id, shipping_amount)] = await rows(
        owner_engine, "select id, shipping_amount from refund where order_id = :o and status = 'succeeded' "
                      "and shipping_amount > 0", o=order.id)
    [(honey_tax,)] = await rows(owner_engine, "select tax_amount from refund_line where refund_id = :r", r=second_id)
    assert shipping_amount > order.shipping_total  # the shipping with its tax share
    # The shipping's tax share goes to the tax account, as the invoice books it; the shipping account gets the
    # shipping alone.
    assert [(tax_row["account_head"], Decimal(str(tax_row["tax_amount"]))) for tax_row in second_note["taxes"]] == [
        ("VAT - CO", -Decimal(honey_tax + shipping_amount - order.shipping_total) / 100),
        (erp_settings.ERPNEXT_SHIPPING_ACCOUNT, -Decimal(order.shipping_total) / 100)]

    # Replays (the catch-up, the dispatcher again) make nothing twice; invoice minus notes = captured minus refunded.
    inserts = len(fake_erpnext.inserts)
    async with httpx.AsyncClient() as client:
        await sync_to_erpnext(app_engine, erp_settings, client, tenant_ids=[shop.tenant_id])
    await dispatch(app_engine, erp_settings)
    assert len(fake_erpnext.inserts) == inserts and len(await notes()) == 2
    [(refunded,)] = await rows(owner_engine, "select coalesce(sum(amount), 0) from refund where order_id = :o "
                                             "and status = 'succeeded'", o=order.id)
    assert Decimal(str(invoice["grand_total"])) + sum(Decimal(str(doc["grand_total"])) for doc in await notes()) == (
        Decimal(order.total - refunded) / 100)


async def test_erpnext_down_in_the_middle_then_resumed_then_dead_letters(
        erp_api: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe, fake_erpnext: FakeERPNext,
        owner_engine, app_engine, erp_settings: Settings, gql: GraphQLClient, tokens: Tokens) -> None:
    await paid_order(Shopper(GraphQLClient(erp_api), shop), erp_api, fake_stripe, {"CP-HONEY-12": 1})
    order = await order_of(owner_engine, shop)
    fake_erpnext.calls_until_down = 4  # the customer and the invoice go through, the payment meets a 502
    try:
        assert (await dispatch(app_engine, erp_settings)).startswith("0 sent, 1 retry")
    finally:
        fake_erpnext.calls_until_down, fake_erpnext.down = None, False
    status, attempts, error = (await rows(owner_engine, "select status, attempts, last_error from outbox where "
                                                        "tenant_id = :t and topic = 'erpnext.sync_order'",
                                          t=shop.tenant_id))[0]
    assert (status, attempts) == ("pending", 1) and error.startswith("ERPNext 502")
    assert len(mine(fake_erpnext, "Sales Invoice", order.id, "order")) == 1
    assert mine(fake_erpnext, "Payment Entry", order.id, "payment") == []
    async with owner_engine.begin() as connection:  # the backoff has passed
        await connection.execute(text("update outbox set next_attempt_at = now() where tenant_id = :t"),
                                 {"t": shop.tenant_id})
    assert (await dispatch(app_engine, erp_settings)).startswith("1 sent")
    assert len(mine(fake_erpnext, "Sales Invoice", order.id, "order")) == 1  # not created twice
    assert len(mine(fake_erpnext, "Payment Entry", order.id, "payment")) == 1
    assert len(fake_erpnext.documents("Customer", cityos_id=f"customer:{shop.tenant_id}:guest:{order.email}")) == 1

    # ERPNext refuses the documents (a mandatory field missing in our settings): no retry, a dead letter.
    broken = erp_settings.model_copy(update={"ERPNEXT_TAX_ACCOUNT": ""})
    await paid_order(Shopper(GraphQLClient(erp_api), shop), erp_api, fake_stripe, {"LU-CANDLE": 1})
    assert (await dispatch(app_engine, broken)).startswith("0 sent, 0 retry, 1 dead")
    dead = await gql(OPS["admin/OutboxMessages"], {"status": "DEAD"}, token=tokens("tenant_admin", shop))
    [message] = dead["data"]["outboxMessages"]["nodes"]
    assert message["topic"] == "erpnext.sync_order" and "MandatoryError" in message["lastError"]
    assert message["lastError"].startswith("ERPNext 417")


async def test_the_registry_runs_sync_to_erpnext(erp_settings: Settings, app_engine) -> None:
    assert JOBS["sync-to-erpnext"].schedule == "0 3 * * *"
    async with httpx.AsyncClient() as client:
        outcome = await JOBS["sync-to-erpnext"].run(JobContext(app_engine, erp_settings, None, http=client))
    assert "order(s) requested" in outcome
    async with httpx.AsyncClient() as client:
        unconfigured = await JOBS["sync-to-erpnext"].run(JobContext(app_engine, erp_settings.model_copy(
            update={"ERPNEXT_URL": None}), None, http=client))
    assert unconfigured == "ERPNext is not configured; nothing sent"


async def test_a_refund_stripe_confirms_later_is_credited_then_canceled_if_it_fails(
        erp_api: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe, fake_erpnext: FakeERPNext,
        owner_engine, app_engine, erp_settings: Settings, tokens: Tokens) -> None:
    gql, admin = GraphQLClient(erp_api), tokens("tenant_admin", shop)
    order_gid = await paid_order(Shopper(gql, shop), erp_api, fake_stripe, {"LU-CANDLE": 1, "CP-HONEY-12": 1})
    order = await order_of(owner_engine, shop)
    await dispatch(app_engine, erp_settings)
    lines = (await gql(LINES, {"id": order_gid}, token=admin))["data"]["order"]["lines"]
    candle = next(line for line in lines if line["sku"] == "LU-CANDLE")
    body = await gql(OPS["admin/RefundOrder"], {"orderId": order_gid, "input": {
        "lines": [{"lineId": candle["id"], "quantity": 1}]}}, token=admin)
    assert body["data"]["refundOrder"]["status"] == "SUCCEEDED", body
    async with owner_engine.begin() as connection:  # as if Stripe had answered `pending` (a bank's refund)
        await connection.execute(text("update refund set status = 'pending' where order_id = :o"), {"o": order.id})
    await dispatch(app_engine, erp_settings)
    [(refund_id,)] = await rows(owner_engine, "select id from refund where order_id = :o", o=order.id)
    assert mine(fake_erpnext, "Sales Invoice", refund_id, "refund") == []  # pending: no note yet

    charge = fake_stripe.charge(order.payment_intent_id)
    answer = await send_event(erp_api, fake_stripe, "charge.refunded", charge)
    assert answer.status_code == 200 and "1 refund(s) succeeded" in answer.json()["outcome"], answer.text
    assert (await dispatch(app_engine, erp_settings)).startswith("1 sent")
    [note] = mine(fake_erpnext, "Sales Invoice", refund_id, "refund")
    assert [(item["item_code"], item["qty"]) for item in note["items"]] == [("LU-CANDLE", -1)]
    again = await send_event(erp_api, fake_stripe, "charge.refunded", charge)  # redelivered: nothing more
    assert "0 refund(s) succeeded" in again.json()["outcome"], again.text
    await dispatch(app_engine, erp_settings)
    assert len(mine(fake_erpnext, "Sales Invoice", refund_id, "refund")) == 1

    # Stripe fails the refund later (refund.failed): its note is canceled, once; no note is made again.
    failed = fake_stripe.fail_refund(next(r["id"] for r in fake_stripe.refunds.values()
                                          if r["payment_intent"] == order.payment_intent_id))
    answer = await send_event(erp_api, fake_stripe, "refund.failed", failed)
    assert answer.json()["outcome"].startswith("refund failed"), answer.text
    assert (await dispatch(app_engine, erp_settings)).startswith("1 sent")
    [note] = mine(fake_erpnext, "Sales Invoice", refund_id, "refund")
    assert note["docstatus"] == 2
    async with httpx.AsyncClient() as client:
        await sync_to_erpnext(app_engine, erp_settings, client, tenant_ids=[shop.tenant_id])
    assert [doc["docstatus"] for doc in mine(fake_erpnext, "Sales Invoice", refund_id, "refund")] == [2]

    # The shipping alone: a note whose item row is the shipping item (ERPNext needs one), its tax share on the
    # tax account.
    shipping = await gql(OPS["admin/RefundOrder"], {"orderId": order_gid, "input": {"lines": [],
                                                                                    "refundShipping": True}},
                         token=admin)
    assert shipping["data"]["refundOrder"]["status"] == "SUCCEEDED", shipping
    assert (await dispatch(app_engine, erp_settings)).startswith("1 sent")
    [(shipping_id, shipping_amount)] = await rows(
        owner_engine, "select id, shipping_amount from refund where order_id = :o and shipping_amount > 0",
        o=order.id)
    [note] = mine(fake_erpnext, "Sales Invoice", shipping_id, "refund")
    assert note["docstatus"] == 1 and note["is_return"] == 1
    assert [(item["item_code"], item["qty"], Decimal(str(item["rate"]))) for item in note["items"]] == [
        (erp_settings.ERPNEXT_SHIPPING_ITEM_CODE, -1, Decimal(order.shipping_total) / 100)]
    assert [(tax_row["account_head"], Decimal(str(tax_row["tax_amount"]))) for tax_row in note["taxes"]] == [
        ("VAT - CO", -Decimal(shipping_amount - order.shipping_total) / 100)]
    assert Decimal(str(note["grand_total"])) == -Decimal(shipping_amount) / 100


async def test_a_tax_inclusive_order_is_invoiced_at_its_total_and_credited_exactly(
        erp_api: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe, fake_erpnext: FakeERPNext,
        owner_engine, app_engine, erp_settings: Settings, tokens: Tokens) -> None:
    """Prices that include the tax: ERPNext (the fake computes totals as ERPNext does) takes the tax out of the
    rates, so the invoice's grand total is the order's total, and its notes sum to minus the refunds."""
    async with owner_engine.begin() as connection:
        await connection.execute(text("update region set tax_inclusive = true where tenant_id = :t"),
                                 {"t": shop.tenant_id})
    gql, admin = GraphQLClient(erp_api), tokens("tenant_admin", shop)
    order_gid = await paid_order(Shopper(gql, shop), erp_api, fake_stripe, {"LU-CANDLE": 3, "CP-HONEY-12": 1})
    order = await order_of(owner_engine, shop)
    assert order.tax_inclusive and order.tax_total > 0 and order.shipping_total > 0
    assert order.total == order.subtotal - order.discount_total + order.shipping_total  # no tax on top
    assert (await dispatch(app_engine, erp_settings)).startswith("1 sent")
    [invoice] = mine(fake_erpnext, "Sales Invoice", order.id, "order")
    assert [(tax["charge_type"], tax["included_in_print_rate"]) for tax in invoice["taxes"]] == [("On Net Total", 1)]
    assert invoice["items"][-1]["item_code"] == erp_settings.ERPNEXT_SHIPPING_ITEM_CODE
    assert Decimal(str(invoice["grand_total"])) == Decimal(order.total) / 100
    # ERPNext's own tax is the order's within a cent per row (it rounds per document, we once per cart).
    assert abs(Decimal(str(invoice["taxes"][0]["tax_amount"])) - Decimal(order.tax_total) / 100) <= Decimal("0.02")

    lines = (await gql(LINES, {"id": order_gid}, token=admin))["data"]["order"]["lines"]
    candle = next(line for line in lines if line["sku"] == "LU-CANDLE")
    first = await gql(OPS["admin/RefundOrder"], {"orderId": order_gid, "input": {
        "lines": [{"lineId": candle["id"], "quantity": 1}]}}, token=admin)
    assert first["data"]["refundOrder"]["status"] == "SUCCEEDED", first
    unit = (await rows(owner_engine, "select unit_price from order_line where order_id = :o and sku = 'LU-CANDLE'",
                       o=order.id))[0][0]
    [(first_amount,)] = await rows(owner_engine, "select amount from refund where order_id = :o", o=order.id)
    assert first_amount == unit  # the price paid, its tax inside it
    rest = await gql(OPS["admin/UpdateOrderStatus"], {"id": order_gid, "status": "REFUNDED"}, token=admin)
    assert rest["data"]["updateOrderStatus"]["status"] == "REFUNDED", rest
    [(refunded,)] = await rows(owner_engine, "select sum(amount) from refund where order_id = :o "
                                             "and status = 'succeeded'", o=order.id)
    assert refunded == order.total
    await dispatch(app_engine, erp_settings)
    notes = [doc for doc in fake_erpnext.documents("Sales Invoice") if doc.get("return_against") == invoice["name"]]
    assert len(notes) == 2 and all(note["taxes"] == [{**invoice["taxes"][0], **{k: note["taxes"][0][k] for k in (
        "tax_amount", "total")}}] for note in notes)
    assert sum(Decimal(str(note["grand_total"])) for note in notes) == -Decimal(order.total) / 100


async def test_an_order_with_a_whole_order_note_gets_no_note_per_refund(
        erp_api: httpx.AsyncClient, shop: TenantWorld, fake_stripe: FakeStripe, fake_erpnext: FakeERPNext,
        owner_engine, app_engine, erp_settings: Settings, tokens: Tokens, caplog: pytest.LogCaptureFixture) -> None:
    """Refunded before notes were per refund: the order's old whole-order note (`refund:<order id>`) credits it
    already, so a sync of its refunds (a catch-up, a retry) sends none of their own, and logs why."""
    gql, admin = GraphQLClient(erp_api), tokens("tenant_admin", shop)
    order_gid = await paid_order(Shopper(gql, shop), erp_api, fake_stripe, {"LU-CANDLE": 1})
    order = await order_of(owner_engine, shop)
    assert (await dispatch(app_engine, erp_settings)).startswith("1 sent")
    [invoice] = mine(fake_erpnext, "Sales Invoice", order.id, "order")
    # The note the old sync wrote when the order was refunded whole.
    fake_erpnext.docs["Sales Invoice"]["ACC-SINV-OLD-1"] = {
        **invoice, "name": "ACC-SINV-OLD-1", "is_return": 1, "return_against": invoice["name"],
        "cityos_id": f"refund:{order.id}", "grand_total": -invoice["grand_total"], "docstatus": 1}
    refunded = await gql(OPS["admin/UpdateOrderStatus"], {"id": order_gid, "status": "REFUNDED"}, token=admin)
    assert refunded["data"]["updateOrderStatus"]["status"] == "REFUNDED", refunded
    with caplog.at_level("WARNING", logger="cityos.integrations.erpnext.sync"):
        assert (await dispatch(app_engine, erp_settings)).startswith("1 sent")
    [(refund_id,)] = await rows(owner_engine, "select id from refund where order_id = :o", o=order.id)
    assert mine(fake_erpnext, "Sales Invoice", refund_id, "refund") == []
    assert len(mine(fake_erpnext, "Sales Invoice", order.id, "refund")) == 1
    assert any("whole-order credit note" in record.getMessage() for record in caplog.records)
    [(note,)] = await rows(owner_engine, "select last_error from outbox where tenant_id = :t and topic = "
                                         "'erpnext.sync_order' order by created_at desc limit 1", t=shop.tenant_id)
    assert "not credited again: the order has a whole-order credit note" in note
