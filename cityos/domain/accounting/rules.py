"""Our orders as ERPNext documents (external-apis.md §4), pure functions.

- Customer (`cityos_id` = `customer:<tenant>:<customer id or guest e-mail>`): customer_name, customer_type
  Individual, customer_group, territory. A B2B company's orders go to the company as a Customer of type Company
  (`cityos_id` = `company:<tenant>:<company id>`, its legal name and tax id).
- On account (a company's order paid by invoice): the Sales Invoice's `due_date` is the invoice's due date, and
  the Payment Entry is made only once the invoice is paid (`reference_no` = `invoice:<invoice id>`, the payment's
  date).
- Sales Invoice (`cityos_id` = `order:<order id>`): submitted (`docstatus` 1), one item row per order line
  (`item_code` = SKU, `qty`, `rate` = the unit price paid, after volume pricing). Its grand total is the order's
  total (ERPNext computes it: `grand_total` mirrors that computation).
  - Tax added on top (tax-exclusive regions): tax rows `charge_type` Actual with `account_head` and `description`,
    the order's whole tax (the shipping's share too) on the tax account, the shipping on the shipping account.
  - Prices that include the tax (tax-inclusive regions): the shipping is an item row of the shipping item
    (ERPNEXT_SHIPPING_ITEM_CODE; its income account should be the shipping account) and one tax row `On Net
    Total` with `included_in_print_rate` 1 (ERPNext refuses an `Actual` row included in the rate) at the order's
    effective rate (`inclusive_rate`: its tax over its total net of tax, as a percentage to 3 places, ERPNext's
    float precision). ERPNext takes the tax out of the item amounts, so the grand total is the item amounts: the
    order's total, whatever the rounding of the tax ERPNext shows.
- Payment Entry (`cityos_id` = `payment:<order id>`): Receive from the customer, paid to the payments account,
  `reference_no` the PaymentIntent and `reference_date` the order's date (required for a Bank account),
  allocated in full to the invoice.
- Credit note per succeeded refund, partial or whole (`cityos_id` = `refund:<refund id>`): a Sales Invoice with
  `is_return` 1 and `return_against` the invoice, the refunded lines' units, their tax and the refunded shipping,
  negated (ERPNext's sales_invoice.json fields), on the invoice's accounts: the lines' tax and the shipping's
  tax share on the tax account row, the shipping (net of its tax) on the shipping account row. A refunded order's
  credit is the sum of its refunds' notes: there is no whole-order note, and a failed (or still pending) refund
  has none. A refund of the shipping alone has the shipping item's row (ERPNext needs an item row) in place of
  the shipping account row. An inclusive order's note has the refunded lines and shipping as item rows at the
  prices paid and the invoice's inclusive tax row.
- Orders refunded before per-refund notes existed carry one whole-order note (`refund:<order id>`): the sync
  sends no per-refund note for such an order (it would credit the order twice) and says so
  (integrations/erpnext/sync.py).

`cityos_id` is a Custom Field (deploy/erpnext/) on the three doctypes: every document is looked up by it before
it is created, so a retried or repeated push never makes a second one. Amounts leave minor units here only:
`major` divides by the currency's decimal digits exactly (Decimal).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class Accounts:
    """The ERPNext names a tenant's documents use (settings ERPNEXT_*)."""

    customer_group: str
    territory: str
    tax_account: str
    shipping_account: str
    payment_account: str
    mode_of_payment: str
    shipping_item: str = "Shipping"  # the item a shipping row is (inclusive orders, shipping-only notes)


def major(amount: int, decimals: int) -> Decimal:
    return Decimal(amount).scaleb(-decimals)


def customer_key(tenant_id: uuid.UUID, customer_id: str | None, email: str) -> str:
    return f"customer:{tenant_id}:{customer_id or 'guest:' + email.strip().lower()}"


def customer_document(key: str, email: str, accounts: Accounts) -> dict[str, Any]:
    return {"customer_name": email.strip().lower(), "customer_type": "Individual",
            "customer_group": accounts.customer_group, "territory": accounts.territory, "cityos_id": key}


def company_key(tenant_id: uuid.UUID, company_id: uuid.UUID) -> str:
    return f"company:{tenant_id}:{company_id}"


def company_customer_document(key: str, legal_name: str, tax_id: str | None, accounts: Accounts) -> dict[str, Any]:
    document = {"customer_name": legal_name, "customer_type": "Company", "customer_group": accounts.customer_group,
                "territory": accounts.territory, "cityos_id": key}
    if tax_id:
        document["tax_id"] = tax_id
    return document


def _number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def inclusive_rate(tax_total: int, total: int) -> Decimal:
    """The effective rate (percent, 3 places) of a tax-inclusive order: its tax over its total net of the tax."""
    net = total - tax_total
    if tax_total <= 0 or net <= 0:
        return Decimal(0)
    return (Decimal(tax_total) * 100 / Decimal(net)).quantize(Decimal("0.001"))


def _shipping_item(amount: int, quantity: int, decimals: int, accounts: Accounts) -> dict[str, Any]:
    return {"item_code": accounts.shipping_item, "item_name": "Shipping", "qty": quantity,
            "rate": _number(major(amount, decimals))}


def _inclusive_tax(rate: Decimal, accounts: Accounts) -> dict[str, Any]:
    return {"charge_type": "On Net Total", "account_head": accounts.tax_account, "description": "Sales tax",
            "rate": _number(rate), "included_in_print_rate": 1}


def invoice_document(order: Any, lines: list[Any], decimals: int, customer: str,
                     accounts: Accounts, due: date | None = None) -> dict[str, Any]:
    """`due`: an on-account invoice's due date (else due when posted: the order was paid by card)."""
    posted = order.created_at.date().isoformat()
    items = [row for line in lines for row in _sold_items(line, decimals)]
    taxes: list[dict[str, Any]] = []
    if order.tax_inclusive:
        if order.shipping_total:
            items.append(_shipping_item(order.shipping_total, 1, decimals, accounts))
        if order.tax_total:
            taxes.append(_inclusive_tax(inclusive_rate(order.tax_total, order.total), accounts))
    else:
        if order.tax_total:
            taxes.append({"charge_type": "Actual", "account_head": accounts.tax_account, "description": "Sales tax",
                          "tax_amount": _number(major(order.tax_total, decimals))})
        if order.shipping_total:
            taxes.append({"charge_type": "Actual", "account_head": accounts.shipping_account,
                          "description": "Shipping", "tax_amount": _number(major(order.shipping_total, decimals))})
    return {"customer": customer, "posting_date": posted, "due_date": due.isoformat() if due else posted,
            "currency": order.currency_code.upper(), "items": items,
            "taxes": taxes, "docstatus": 1, "po_no": str(order.id), "cityos_id": f"order:{order.id}"}


def _sold_items(line: Any, decimals: int) -> list[dict[str, Any]]:
    """A sold line at its unit price; a line with a promotion discount at exactly its total (one row, or two when
    the total does not divide evenly over its units), so the invoice's total is what was paid."""
    if not line.promotion_discount:
        return [{"item_code": line.sku, "item_name": line.title[:140], "qty": line.quantity,
                 "rate": _number(major(line.unit_price, decimals))}]
    base, rest = divmod(line.total, line.quantity)
    return [{"item_code": line.sku, "item_name": line.title[:140], "qty": units, "rate": _number(major(rate, decimals))}
            for units, rate in ((line.quantity - rest, base), (rest, base + 1)) if units]


def payment_document(order: Any, decimals: int, customer: str, invoice: str, accounts: Accounts,
                     paid: tuple[str, date] | None = None) -> dict[str, Any]:
    """`paid`: (reference, date) of an on-account invoice's payment; by default the order's PaymentIntent."""
    amount = _number(major(order.total, decimals))
    reference, when = paid or (order.payment_intent_id, order.created_at.date())
    return {"payment_type": "Receive", "party_type": "Customer", "party": customer, "paid_amount": amount,
            "received_amount": amount, "paid_to": accounts.payment_account, "mode_of_payment": accounts.mode_of_payment,
            "reference_no": reference, "reference_date": when.isoformat(),
            "references": [{"reference_doctype": "Sales Invoice", "reference_name": invoice,
                            "allocated_amount": amount}],
            "docstatus": 1, "cityos_id": f"payment:{order.id}"}


@dataclass(frozen=True)
class RefundedLine:
    """One refund_line with its order line's SKU and title: `amount` its goods, `tax_amount` its tax share."""

    sku: str
    title: str
    quantity: int
    amount: int
    tax_amount: int


def _credited_items(line: RefundedLine, decimals: int) -> list[dict[str, Any]]:
    """The refunded units at exactly `amount` in all: one row, or two when the amount does not divide evenly
    (the remainder's units one minor unit dearer), so the note's total is never rounded."""
    base, rest = divmod(line.amount, line.quantity)
    rows = [(line.quantity - rest, base), (rest, base + 1)]
    return [{"item_code": line.sku, "item_name": line.title[:140], "qty": -units,
             "rate": _number(major(rate, decimals))} for units, rate in rows if units]


def refund_credit_note_document(invoice_document_: dict[str, Any], invoice: str, refund_id: uuid.UUID,
                                lines: list[RefundedLine], shipping_amount: int, decimals: int,
                                accounts: Accounts, today: date, shipping_tax: int = 0) -> dict[str, Any]:
    """A succeeded refund (partial or whole): exactly its lines' units and amounts, their tax and the refunded
    shipping (`shipping_amount`, of which `shipping_tax` is its tax share), negated, against the order's invoice,
    on the invoice's accounts. Its grand total is minus the refund's amount."""
    items = [row for line in lines if line.quantity for row in _credited_items(line, decimals)]
    inclusive = [tax for tax in invoice_document_["taxes"] if tax.get("included_in_print_rate")]
    taxes: list[dict[str, Any]] = []
    if inclusive:  # prices paid include the tax: ERPNext takes it out of the rows with the invoice's rate
        if shipping_amount:
            items.append(_shipping_item(shipping_amount, -1, decimals, accounts))
        taxes = [dict(tax) for tax in inclusive]
    else:
        tax = sum(line.tax_amount for line in lines) + shipping_tax
        shipping = shipping_amount - shipping_tax
        if shipping and not items:  # ERPNext needs an item row: the shipping item carries the shipping
            items.append(_shipping_item(shipping, -1, decimals, accounts))
            shipping = 0
        if tax:
            taxes.append({"charge_type": "Actual", "account_head": accounts.tax_account, "description": "Sales tax",
                          "tax_amount": -_number(major(tax, decimals))})
        if shipping:
            taxes.append({"charge_type": "Actual", "account_head": accounts.shipping_account,
                          "description": "Shipping", "tax_amount": -_number(major(shipping, decimals))})
    return {**invoice_document_, "posting_date": today.isoformat(), "due_date": today.isoformat(),
            "is_return": 1, "return_against": invoice, "items": items, "taxes": taxes,
            "cityos_id": f"refund:{refund_id}"}


def creditable(credit_note: dict[str, Any]) -> bool:
    """ERPNext takes a Sales Invoice only with item rows (a shipping-only note has the shipping item's)."""
    return bool(credit_note["items"])


def shipping_tax(shipping_amount: int, shipping_total: int, tax_inclusive: bool) -> int:
    """The tax share inside a refund's shipping amount (the shipping is refunded whole, with its tax share on top
    when the tax is added; an inclusive order's shipping contains its tax, which ERPNext takes out itself)."""
    if tax_inclusive or not shipping_amount:
        return 0
    return max(0, shipping_amount - shipping_total)


def legacy_note_key(order_id: uuid.UUID) -> str:
    """The `cityos_id` of the whole-order credit note written before notes were per refund."""
    return f"refund:{order_id}"


def grand_total(document: dict[str, Any]) -> Decimal:
    """What ERPNext's grand total comes to (tests check it equals the order's total): the item amounts plus the
    Actual rows; an `included_in_print_rate` row adds nothing (its tax is inside the item amounts)."""
    items = sum((Decimal(str(item["qty"])) * Decimal(str(item["rate"])) for item in document["items"]), Decimal(0))
    return items + sum((Decimal(str(tax["tax_amount"])) for tax in document["taxes"]
                        if not tax.get("included_in_print_rate")), Decimal(0))
