"""The ownership rule (domain/content/rules.py) and the ERPNext documents of an order (domain/accounting/rules.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

from cityos.domain.accounting import rules as accounting
from cityos.domain.content import rules as content
from cityos.domain.content.models import ContentKind
from cityos.integrations.payload.client import query_params

ACCOUNTS = accounting.Accounts("Individual", "All Territories", "VAT", "Freight", "Bank", "Card")


def test_only_content_fields_are_read_from_payload() -> None:
    document = {"id": 7, "cityosId": str(uuid.uuid4()), "title": "Theirs", "status": "archived", "price": 1,
                "richDescription": {"root": {}}, "descriptionHtml": "<p>x</p>",
                "images": [{"image": {"url": "https://cdn/x.jpg", "alt": "X"}}, {"url": "javascript:alert(1)"},
                           {"url": "/local.png", "alt": "L"}],
                "seo": {"title": "T", "description": "D", "imageUrl": "ftp://no"}, "brand": "not an object"}
    assert content.content_of(document) == {
        "richDescription": {"root": {}}, "descriptionHtml": "<p>x</p>",
        "images": [{"url": "https://cdn/x.jpg", "alt": "X"}, {"url": "/local.png", "alt": "L"}],
        "seo": {"title": "T", "description": "D", "imageUrl": None}}


def test_commerce_drift_names_the_commerce_fields_payload_changed() -> None:
    row = SimpleNamespace(id=uuid.uuid4(), tenant_id=uuid.uuid4(), title="Ours", handle="h", status="published",
                          store_id=uuid.uuid4(), vendor_id=None)
    ours = content.commerce_document(ContentKind.PRODUCT, row)
    assert ours["vendor"] is None and ours["cityosId"] == str(row.id)
    assert content.commerce_drift(ContentKind.PRODUCT, {**ours, "title": "Theirs", "seo": {}}, ours) == ["title"]
    assert content.commerce_drift(ContentKind.PRODUCT, {"cityosId": ours["cityosId"]}, ours) == []


def test_versions_and_timestamps() -> None:
    moment = datetime(2026, 11, 27, 8, 0, 0, 123456, tzinfo=UTC)
    assert content.payload_timestamp(moment) == "2026-11-27T08:00:00.123Z"
    assert content.parse_timestamp("2026-11-27T08:00:00.123Z") == moment.replace(microsecond=123000)
    assert content.is_newer(moment, None) and not content.is_newer(moment, moment)
    assert not content.is_newer(None, moment)


def test_payload_where_syntax() -> None:
    assert query_params({"cityosId": {"equals": "a"}, "or": [{"x": {"in": ["1", "2"]}}], "y": {"exists": True}}) == [
        ("where[cityosId][equals]", "a"), ("where[or][0][x][in][0]", "1"), ("where[or][0][x][in][1]", "2"),
        ("where[y][exists]", "true")]


def order() -> SimpleNamespace:
    return SimpleNamespace(id=uuid.uuid4(), currency_code="usd", created_at=datetime(2026, 11, 27, tzinfo=UTC),
                           tax_total=83, shipping_total=500, total=1583 + 1005, payment_intent_id="pi_1",
                           tax_inclusive=False)


def two_lines() -> list[SimpleNamespace]:
    """Order lines A (2 × 5.00) and B (1 × 10.05), no promotion."""
    return [SimpleNamespace(sku="A", title="A", quantity=2, unit_price=500, promotion_discount=0),
            SimpleNamespace(sku="B", title="B", quantity=1, unit_price=1005, promotion_discount=0)]


def test_the_invoice_adds_up_to_the_order_and_the_credit_note_negates_it() -> None:
    paid = order()
    invoice = accounting.invoice_document(paid, two_lines(), 2, "alice", ACCOUNTS)
    assert invoice["docstatus"] == 1 and invoice["currency"] == "USD"
    assert [tax["charge_type"] for tax in invoice["taxes"]] == ["Actual", "Actual"]
    assert accounting.grand_total(invoice) == Decimal("25.88") == Decimal(paid.total) / 100
    whole = uuid.uuid4()
    credit = accounting.refund_credit_note_document(invoice, "ACC-SINV-1", whole, [
        accounting.RefundedLine("A", "A", 2, 1000, 32), accounting.RefundedLine("B", "B", 1, 1005, 51)],
        500, 2, ACCOUNTS, date(2026, 12, 1))
    assert credit["is_return"] == 1 and credit["return_against"] == "ACC-SINV-1"
    assert accounting.grand_total(credit) == -accounting.grand_total(invoice)
    assert credit["cityos_id"] == f"refund:{whole}" and invoice["cityos_id"] == f"order:{paid.id}"
    payment = accounting.payment_document(paid, 2, "alice", "ACC-SINV-1", ACCOUNTS)
    assert payment["paid_amount"] == 25.88 and payment["references"][0]["allocated_amount"] == 25.88
    assert accounting.major(1234, 0) == Decimal(1234) and accounting.major(5, 3) == Decimal("0.005")


def test_a_partial_refund_credits_exactly_its_lines_tax_and_shipping() -> None:
    invoice = accounting.invoice_document(order(), two_lines(), 2, "alice", ACCOUNTS)
    refund_id = uuid.uuid4()
    credit = accounting.refund_credit_note_document(invoice, "ACC-SINV-1", refund_id,
                                                    [accounting.RefundedLine("A", "A", 1, 500, 16)], 0, 2, ACCOUNTS,
                                                    date(2026, 12, 1))
    assert credit["cityos_id"] == f"refund:{refund_id}" and credit["posting_date"] == "2026-12-01"
    assert [(item["item_code"], item["qty"], item["rate"]) for item in credit["items"]] == [("A", -1, 5)]
    assert credit["taxes"] == [{"charge_type": "Actual", "account_head": ACCOUNTS.tax_account,
                                "description": "Sales tax", "tax_amount": -0.16}]
    assert accounting.grand_total(credit) == Decimal("-5.16")
    # Shipping only: the shipping item's row (ERPNext needs an item row) and the shipping's tax share on the tax
    # row, as the invoice books them.
    shipping = accounting.refund_credit_note_document(invoice, "ACC-SINV-1", uuid.uuid4(), [], 541, 2, ACCOUNTS,
                                                      date(2026, 12, 1), shipping_tax=41)
    assert [(item["item_code"], item["qty"], item["rate"]) for item in shipping["items"]] == [
        (ACCOUNTS.shipping_item, -1, 5)]
    assert [(tax["account_head"], tax["tax_amount"]) for tax in shipping["taxes"]] == [(ACCOUNTS.tax_account, -0.41)]
    assert accounting.grand_total(shipping) == Decimal("-5.41")
    assert accounting.creditable(shipping) and accounting.creditable(credit)
    # Lines and shipping: the shipping's tax share on the tax row, the shipping net of it on the shipping row.
    both = accounting.refund_credit_note_document(invoice, "ACC-SINV-1", uuid.uuid4(),
                                                  [accounting.RefundedLine("A", "A", 1, 500, 16)], 541, 2, ACCOUNTS,
                                                  date(2026, 12, 1), shipping_tax=41)
    assert [(tax["account_head"], tax["tax_amount"]) for tax in both["taxes"]] == [
        (ACCOUNTS.tax_account, -0.57), (ACCOUNTS.shipping_account, -5)]
    assert accounting.grand_total(both) == Decimal("-10.57")
    assert accounting.shipping_tax(541, 500, False) == 41 and accounting.shipping_tax(500, 500, True) == 0
    assert accounting.shipping_tax(0, 500, False) == 0
    # An amount that does not divide by the units: two rows, the total exact (never rounded).
    odd = accounting.refund_credit_note_document(invoice, "ACC-SINV-1", uuid.uuid4(),
                                                 [accounting.RefundedLine("A", "A", 3, 1000, 0)], 0, 2, ACCOUNTS,
                                                 date(2026, 12, 1))
    assert [(item["qty"], item["rate"]) for item in odd["items"]] == [(-2, 3.33), (-1, 3.34)]
    assert accounting.grand_total(odd) == Decimal("-10.00")


def test_guests_and_customers_have_distinct_keys() -> None:
    tenant = uuid.uuid4()
    assert accounting.customer_key(tenant, None, " Bob@Example.com ") == f"customer:{tenant}:guest:bob@example.com"
    assert accounting.customer_key(tenant, "sub-1", "bob@example.com") == f"customer:{tenant}:sub-1"


def test_a_promoted_line_is_invoiced_at_exactly_its_total() -> None:
    line = SimpleNamespace(sku="A", title="A", quantity=3, unit_price=1000, total=2701, promotion_discount=299)
    invoice = accounting.invoice_document(order(), [line], 2, "alice", ACCOUNTS)
    assert invoice["items"] == [{"item_code": "A", "item_name": "A", "qty": 2, "rate": 9},
                                {"item_code": "A", "item_name": "A", "qty": 1, "rate": 9.01}]


def test_a_tax_inclusive_invoice_includes_the_tax_in_the_rates() -> None:
    """Prices including tax: the shipping is an item row, one `On Net Total` row included in the print rate at the
    order's effective rate; the grand total is the order's total (no tax on top), and a note negates its part."""
    paid = SimpleNamespace(id=uuid.uuid4(), currency_code="eur", created_at=datetime(2026, 11, 27, tzinfo=UTC),
                           tax_total=319, shipping_total=500, total=2000, tax_inclusive=True, payment_intent_id="pi")
    lines = [SimpleNamespace(sku="A", title="A", quantity=3, unit_price=500, promotion_discount=0)]
    invoice = accounting.invoice_document(paid, lines, 2, "alice", ACCOUNTS)
    assert [(item["item_code"], item["qty"], item["rate"]) for item in invoice["items"]] == [
        ("A", 3, 5), (ACCOUNTS.shipping_item, 1, 5)]
    assert invoice["taxes"] == [{"charge_type": "On Net Total", "account_head": ACCOUNTS.tax_account,
                                 "description": "Sales tax", "rate": 18.977, "included_in_print_rate": 1}]
    assert accounting.grand_total(invoice) == Decimal("20") == Decimal(paid.total) / 100
    assert accounting.inclusive_rate(319, 2000) == Decimal("18.977") and accounting.inclusive_rate(0, 10) == 0
    note = accounting.refund_credit_note_document(invoice, "ACC-SINV-1", uuid.uuid4(),
                                                  [accounting.RefundedLine("A", "A", 1, 500, 80)], 500, 2, ACCOUNTS,
                                                  date(2026, 12, 1))
    assert [(item["item_code"], item["qty"]) for item in note["items"]] == [("A", -1), (ACCOUNTS.shipping_item, -1)]
    assert note["taxes"] == invoice["taxes"] and accounting.grand_total(note) == Decimal("-10")
