"""Our orders as ERPNext documents (external-apis.md §4), pure functions.

- Customer (`cityos_id` = `customer:<tenant>:<customer id or guest e-mail>`): customer_name, customer_type
  Individual, customer_group, territory. A B2B company's orders go to the company as a Customer of type Company
  (`cityos_id` = `company:<tenant>:<company id>`, its legal name and tax id).
- On account (a company's order paid by invoice): the Sales Invoice's `due_date` is the invoice's due date, and
  the Payment Entry is made only once the invoice is paid (`reference_no` = `invoice:<invoice id>`, the payment's
  date).
- Sales Invoice (`cityos_id` = `order:<order id>`): submitted (`docstatus` 1), one item row per order line
  (`item_code` = SKU, `qty`, `rate` = the unit price paid, after volume pricing), tax rows `charge_type` Actual
  with `account_head` and `description` for the order's tax and shipping. Its grand total is the order's total.
- Payment Entry (`cityos_id` = `payment:<order id>`): Receive from the customer, paid to the payments account,
  `reference_no` the PaymentIntent and `reference_date` the order's date (required for a Bank account),
  allocated in full to the invoice.
- Credit note per succeeded refund, partial or whole (`cityos_id` = `refund:<refund id>`): a Sales Invoice with
  `is_return` 1 and `return_against` the invoice, the refunded lines' units, their tax and the refunded shipping,
  negated (ERPNext's sales_invoice.json fields). A refunded order's credit is the sum of its refunds' notes: there
  is no whole-order note, and a failed (or still pending) refund has none. A refund of the shipping alone has no
  item row, which ERPNext refuses (items are mandatory): it is not sent (`creditable`), and the sync says so.

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


def invoice_document(order: Any, lines: list[Any], decimals: int, customer: str,
                     accounts: Accounts, due: date | None = None) -> dict[str, Any]:
    """`due`: an on-account invoice's due date (else due when posted: the order was paid by card)."""
    posted = order.created_at.date().isoformat()
    taxes = []
    if order.tax_total:
        taxes.append({"charge_type": "Actual", "account_head": accounts.tax_account, "description": "Sales tax",
                      "tax_amount": _number(major(order.tax_total, decimals))})
    if order.shipping_total:
        taxes.append({"charge_type": "Actual", "account_head": accounts.shipping_account, "description": "Shipping",
                      "tax_amount": _number(major(order.shipping_total, decimals))})
    return {"customer": customer, "posting_date": posted, "due_date": due.isoformat() if due else posted,
            "currency": order.currency_code.upper(),
            "items": [row for line in lines for row in _sold_items(line, decimals)],
            "taxes": taxes, "docstatus": 1, "po_no": str(order.id), "cityos_id": f"order:{order.id}"}


def _sold_items(line: Any, decimals: int) -> list[dict[str, Any]]:
    """A sold line at its unit price; a line with a promotion discount at exactly its total (one row, or two when
    the total does not divide evenly over its units), so the invoice's total is what was paid."""
    if not getattr(line, "promotion_discount", 0):
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
                                accounts: Accounts, today: date) -> dict[str, Any]:
    """A succeeded refund (partial or whole): exactly its lines' units and amounts, their tax and the refunded
    shipping (with its tax share), negated, against the order's invoice. Its grand total is minus the refund's
    amount."""
    tax = sum(line.tax_amount for line in lines)
    taxes = []
    if tax:
        taxes.append({"charge_type": "Actual", "account_head": accounts.tax_account, "description": "Sales tax",
                      "tax_amount": -_number(major(tax, decimals))})
    if shipping_amount:
        taxes.append({"charge_type": "Actual", "account_head": accounts.shipping_account, "description": "Shipping",
                      "tax_amount": -_number(major(shipping_amount, decimals))})
    return {**invoice_document_, "posting_date": today.isoformat(), "due_date": today.isoformat(),
            "is_return": 1, "return_against": invoice,
            "items": [row for line in lines if line.quantity for row in _credited_items(line, decimals)],
            "taxes": taxes, "cityos_id": f"refund:{refund_id}"}


def creditable(credit_note: dict[str, Any]) -> bool:
    """ERPNext takes a Sales Invoice only with item rows: a shipping-only refund's note is left out."""
    return bool(credit_note["items"])


def grand_total(document: dict[str, Any]) -> Decimal:
    """What ERPNext computes for a Sales Invoice with Actual tax rows (tests check it equals the order's total)."""
    items = sum((Decimal(str(item["qty"])) * Decimal(str(item["rate"])) for item in document["items"]), Decimal(0))
    return items + sum((Decimal(str(tax["tax_amount"])) for tax in document["taxes"]), Decimal(0))
