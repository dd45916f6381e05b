"""A local ERPNext / Frappe following external-apis.md §4: `Authorization: token <key>:<secret>` (or
`Basic base64(key:secret)`); `/api/resource/{Doctype}` (URL-encoded doctype names) lists `{"data": [...]}` with
JSON `fields` and `filters` (list of `[doctype, field, op, value]` or a dict), `limit_start`, `limit_page_length`
(alias `limit`, default 20); a POST inserts (`docstatus` 1 inserts and submits) → `{"data": {doc}}`; a PUT merges
and saves (`docstatus` 0→1 submits, 1→2 cancels, anything else of a submitted document is refused); DELETE → 202
`{"data": "ok"}`. Errors use the v1 body (`exc_type`, `exception`, `_server_messages` a JSON string of a list of
JSON strings) with the status of their exception: 401 AuthenticationError, 403 PermissionError, 404
DoesNotExistError, 409 DuplicateEntryError, 417 ValidationError / MandatoryError / LinkValidationError.

Validation as ERPNext does for what we send: mandatory fields (Customer name; Sales Invoice customer and item
rows; tax rows' charge_type, account_head, description; Payment Entry party, paid_to), links (the customer, the
invoice a payment or a credit note refers to, which must be submitted), the bank-account rule of Payment Entry.
Totals as ERPNext computes them (`sales_invoice_totals`: net amounts, `On Net Total` and `Actual` rows, taxes
included in the print rate, the rounding adjustment); an `Actual` row included in the rate is refused as ERPNext
refuses it. Custom fields (our `cityos_id`) are stored and filterable like any field. `failures` answers the
next calls with those statuses (500: an unhandled error), `down` (or `calls_until_down` reaching 0) makes every
call fail with a 502 from the proxy in front of it."""

from __future__ import annotations

import base64
import json
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

STATUS_OF = {"AuthenticationError": 401, "PermissionError": 403, "DoesNotExistError": 404,
             "DuplicateEntryError": 409, "ValidationError": 417, "MandatoryError": 417,
             "LinkValidationError": 417, "UpdateAfterSubmitError": 417}
SERIES = {"Sales Invoice": "ACC-SINV", "Payment Entry": "ACC-PAY"}
DOCTYPES = ("Customer", "Sales Invoice", "Payment Entry")
CHARGE_TYPES = ("Actual", "On Net Total", "On Previous Row Amount", "On Previous Row Total", "On Item Quantity")


CENT = Decimal("0.01")


def _flt(value: Decimal) -> Decimal:
    """frappe's flt(value, 2) with the default (banker's) rounding."""
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


def sales_invoice_totals(items: list[dict[str, Any]], taxes: list[dict[str, Any]]) -> dict[str, Any]:
    """ERPNext's calculate_taxes_and_totals (erpnext/controllers/taxes_and_totals.py) for the rows we send, in
    2-decimal precision: item amount = qty × rate; with taxes included in the print rate, each item's net amount is
    its amount ÷ (1 + Σ included `On Net Total` rates); `On Net Total` rows take rate % of the net amounts, `Actual`
    rows their tax_amount; each row's total is the previous total plus its tax; an inclusive document's grand total
    is adjusted (up to 5 cents: `rounding_adjustment`) to the item amounts plus the rows not included.
    Sets each item's `amount`/`net_amount` and each row's `tax_amount`/`total`."""
    fraction = sum((Decimal(str(tax.get("rate") or 0)) / 100 for tax in taxes
                    if tax.get("included_in_print_rate") and tax["charge_type"] == "On Net Total"), Decimal(0))
    nets = []
    for item in items:
        amount = _flt(Decimal(str(item["qty"])) * Decimal(str(item.get("rate") or 0)))
        net = amount / (1 + fraction) if fraction else amount
        item["amount"], item["net_amount"] = float(amount), float(_flt(net))
        nets.append((amount, net))
    total = sum((amount for amount, _ in nets), Decimal(0))
    net_total = _flt(sum((net for _, net in nets), Decimal(0)))
    running = net_total
    for tax in taxes:
        if tax["charge_type"] == "On Net Total":
            amount = _flt(sum((Decimal(str(tax.get("rate") or 0)) / 100 * net for _, net in nets), Decimal(0)))
        else:
            amount = _flt(Decimal(str(tax.get("tax_amount") or 0)))
        tax["tax_amount"] = float(amount)
        running = _flt(running + amount)
        tax["total"] = float(running)
    adjustment = Decimal(0)
    if any(tax.get("included_in_print_rate") for tax in taxes):
        others = sum((Decimal(str(tax["tax_amount"])) for tax in taxes if not tax.get("included_in_print_rate")),
                     Decimal(0))
        diff = _flt(total + others - running)
        if diff and abs(diff) <= Decimal("0.05"):
            adjustment = diff
    grand = _flt(running + adjustment) if taxes else net_total
    return {"total": float(total), "net_total": float(net_total), "rounding_adjustment": float(adjustment),
            "total_taxes_and_charges": float(_flt(grand - net_total - adjustment)), "grand_total": float(grand)}


def error(exc_type: str, message: str) -> JSONResponse:
    return JSONResponse({"exc_type": exc_type, "exception": f"frappe.exceptions.{exc_type}: {message}",
                         "_server_messages": json.dumps([json.dumps({"message": message})])},
                        status_code=STATUS_OF.get(exc_type, 500))


class FakeERPNext:
    def __init__(self, api_key: str, api_secret: str, bank_accounts: tuple[str, ...] = ()) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.bank_accounts = set(bank_accounts)
        self.base_url = ""
        self.docs: dict[str, dict[str, dict[str, Any]]] = {doctype: {} for doctype in DOCTYPES}
        self.counters: dict[str, int] = {}
        self.inserts: list[str] = []  # doctype of every successful insert
        self.failures: list[int] = []
        self.down = False
        self.calls_until_down: int | None = None  # after this many more calls, every call answers 502

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/api/resource/{doctype}", self._list, methods=["GET"]),
            Route("/api/resource/{doctype}", self._insert, methods=["POST"]),
            Route("/api/resource/{doctype}/{name:path}", self._read, methods=["GET"]),
            Route("/api/resource/{doctype}/{name:path}", self._update, methods=["PUT"]),
            Route("/api/resource/{doctype}/{name:path}", self._delete, methods=["DELETE"]),
        ])

    def documents(self, doctype: str, **where: Any) -> list[dict[str, Any]]:
        return [doc for doc in self.docs[doctype].values() if all(doc.get(k) == v for k, v in where.items())]

    def _refused(self, request: Request) -> JSONResponse | None:
        header = request.headers.get("authorization", "")
        basic = base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()
        if header not in (f"token {self.api_key}:{self.api_secret}", f"Basic {basic}"):
            return error("AuthenticationError", "Invalid Request")
        if self.calls_until_down is not None:
            self.down = self.down or self.calls_until_down <= 0
            self.calls_until_down -= 1
        if self.down:
            return JSONResponse({"exc_type": "OperationalError", "_server_messages": "[]"}, status_code=502)
        if self.failures:
            return JSONResponse({"exc_type": "Exception", "exception": "Exception: Internal Server Error"},
                                status_code=self.failures.pop(0))
        if request.path_params["doctype"] not in self.docs:
            return error("DoesNotExistError", f"DocType {request.path_params['doctype']} not found")
        return None

    @staticmethod
    def _matches(doc: dict[str, Any], field: str, op: str, value: Any) -> bool:
        current = doc.get(field)
        if op == "=":
            return bool(current == value)
        if op == "!=":
            return bool(current != value)
        if op == "in":
            return current in value
        if op == "like":
            return str(value).strip("%") in str(current or "")
        raise ValueError(op)

    async def _list(self, request: Request) -> JSONResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        doctype = request.path_params["doctype"]
        params = request.query_params
        try:
            fields = json.loads(params.get("fields", '["name"]'))
            filters = json.loads(params.get("filters", "[]"))
        except ValueError:
            return error("ValidationError", "Invalid JSON in fields or filters")
        if isinstance(filters, dict):
            filters = [[doctype, key, *(value if isinstance(value, list) else ["=", value])]
                       for key, value in filters.items()]
        docs = list(self.docs[doctype].values())
        try:
            for condition in filters:
                _, field, op, value = condition if len(condition) == 4 else [doctype, *condition]
                docs = [doc for doc in docs if self._matches(doc, field, op, value)]
        except ValueError:
            return error("ValidationError", "Invalid filter operator")
        start = int(params.get("limit_start", "0"))
        length = int(params.get("limit_page_length", params.get("limit", "20")))
        page = docs[start:start + length] if length else docs[start:]
        return JSONResponse({"data": [{field: doc.get(field) for field in fields} for doc in page]})

    def _name(self, doctype: str, doc: dict[str, Any]) -> str:
        if doctype == "Customer":
            name, suffix = doc["customer_name"], 1
            while name in self.docs["Customer"]:
                name, suffix = f"{doc['customer_name']} - {suffix}", suffix + 1
            return str(name)
        year = date.today().year
        self.counters[doctype] = self.counters.get(doctype, 0) + 1
        return f"{SERIES[doctype]}-{year}-{self.counters[doctype]:05d}"

    def _validate(self, doctype: str, doc: dict[str, Any]) -> JSONResponse | None:
        def missing(fields: tuple[str, ...], row: dict[str, Any], label: str) -> JSONResponse | None:
            for field in fields:
                if row.get(field) in (None, "", []):
                    return error("MandatoryError", f"[{label}]: {field}")
            return None

        if doctype == "Customer":
            return missing(("customer_name",), doc, "Customer")
        if doctype == "Sales Invoice":
            if (refused := missing(("customer", "items"), doc, "Sales Invoice")) is not None:
                return refused
            if doc["customer"] not in self.docs["Customer"]:
                return error("LinkValidationError", f"Could not find Customer: {doc['customer']}")
            for item in doc["items"]:
                if (refused := missing(("item_code", "qty"), item, "Sales Invoice Item")) is not None:
                    return refused
            for index, tax in enumerate(doc.get("taxes") or []):
                if (refused := missing(("charge_type", "account_head", "description"), tax,
                                       "Sales Taxes and Charges")) is not None:
                    return refused
                if tax["charge_type"] not in CHARGE_TYPES:
                    return error("ValidationError", f"Charge Type cannot be {tax['charge_type']}")
                if tax.get("included_in_print_rate") and tax["charge_type"] == "Actual":
                    return error("ValidationError", f"Charge of type 'Actual' in row {index + 1} cannot be "
                                                    "included in Item Rate or Paid Amount")
            if doc.get("is_return"):
                against = self.docs["Sales Invoice"].get(doc.get("return_against") or "")
                if against is None or against["docstatus"] != 1:
                    return error("ValidationError", "Return Against must be a submitted Sales Invoice")
            return None
        if (refused := missing(("payment_type", "party_type", "party", "paid_amount", "paid_to"), doc,
                               "Payment Entry")) is not None:
            return refused
        if doc["party"] not in self.docs["Customer"]:
            return error("LinkValidationError", f"Could not find Party: {doc['party']}")
        if doc["paid_to"] in self.bank_accounts and not (doc.get("reference_no") and doc.get("reference_date")):
            return error("ValidationError", "Reference No and Reference Date is mandatory for Bank transaction")
        for reference in doc.get("references") or []:
            invoice = self.docs["Sales Invoice"].get(reference.get("reference_name") or "")
            if invoice is None or invoice["docstatus"] != 1:
                return error("ValidationError", f"{reference.get('reference_name')} must be submitted")
        return None

    def _computed(self, doctype: str, doc: dict[str, Any]) -> None:
        if doctype == "Sales Invoice":
            computed = sales_invoice_totals(doc["items"], doc.get("taxes") or [])
            doc.update(computed)
            doc["outstanding_amount"] = doc["grand_total"]
            doc["status"] = "Return" if doc.get("is_return") else ("Unpaid" if doc["docstatus"] == 1 else "Draft")

    def _submitted(self, doctype: str, doc: dict[str, Any]) -> None:
        if doctype == "Payment Entry":
            for reference in doc.get("references") or []:
                invoice = self.docs["Sales Invoice"][reference["reference_name"]]
                invoice["outstanding_amount"] = float(Decimal(str(invoice["outstanding_amount"]))
                                                      - Decimal(str(reference.get("allocated_amount") or 0)))
                invoice["status"] = "Paid" if invoice["outstanding_amount"] <= 0 else "Partly Paid"
        if doctype == "Sales Invoice" and doc.get("is_return"):
            self.docs["Sales Invoice"][doc["return_against"]]["status"] = "Credit Note Issued"

    async def _insert(self, request: Request) -> JSONResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        doctype = request.path_params["doctype"]
        doc = await request.json()
        if doc.get("docstatus", 0) not in (0, 1):
            return error("ValidationError", "Cannot insert a cancelled document")
        if (refused := self._validate(doctype, doc)) is not None:
            return refused
        doc = {**doc, "doctype": doctype, "docstatus": doc.get("docstatus", 0)}
        doc["name"] = self._name(doctype, doc)
        self._computed(doctype, doc)
        self.docs[doctype][doc["name"]] = doc
        self.inserts.append(doctype)
        if doc["docstatus"] == 1:
            self._submitted(doctype, doc)
        return JSONResponse({"data": doc})

    async def _read(self, request: Request) -> JSONResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        doc = self.docs[request.path_params["doctype"]].get(request.path_params["name"])
        if doc is None:
            return error("DoesNotExistError", f"{request.path_params['doctype']} {request.path_params['name']} "
                                              "not found")
        return JSONResponse({"data": doc})

    async def _update(self, request: Request) -> JSONResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        doctype, name = request.path_params["doctype"], request.path_params["name"]
        doc = self.docs[doctype].get(name)
        if doc is None:
            return error("DoesNotExistError", f"{doctype} {name} not found")
        changes = await request.json()
        target = changes.get("docstatus", doc["docstatus"])
        if (doc["docstatus"], target) not in ((0, 0), (0, 1), (1, 2), (1, 1)):
            return error("ValidationError", f"Cannot change docstatus from {doc['docstatus']} to {target}")
        if doc["docstatus"] == 1 and set(changes) - {"docstatus"}:
            return error("UpdateAfterSubmitError", "Not allowed to change fields after submission")
        merged = {**doc, **changes}
        if target in (0, 1) and (refused := self._validate(doctype, merged)) is not None:
            return refused
        self._computed(doctype, merged)
        self.docs[doctype][name] = merged
        if (doc["docstatus"], target) == (0, 1):
            self._submitted(doctype, merged)
        if target == 2:
            merged["status"] = "Cancelled"
        return JSONResponse({"data": merged})

    async def _delete(self, request: Request) -> JSONResponse:
        if (refused := self._refused(request)) is not None:
            return refused
        doctype, name = request.path_params["doctype"], request.path_params["name"]
        doc = self.docs[doctype].get(name)
        if doc is None:
            return error("DoesNotExistError", f"{doctype} {name} not found")
        if doc["docstatus"] == 1:
            return error("ValidationError", "Submitted documents cannot be deleted; cancel them first")
        del self.docs[doctype][name]
        return JSONResponse({"data": "ok"}, status_code=202)
