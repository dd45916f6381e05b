"""The words of company notices: an invitation carries its token to its one recipient; an overdue reminder goes to
each admin, keyed apart, with the amount as a person reads it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cityos.domain.b2b.notices import format_minor, invitation_notices, overdue_notices


def test_an_invitation_names_company_role_token_and_expiry() -> None:
    [notice] = invitation_notices({"to": "a@b.example", "company_name": "Acme", "role": "company_admin",
                                   "token": "inv_123", "expires_at": "2026-12-04T00:00:00+00:00",
                                   "invited_by": "boss"}, "row-1")
    assert notice.to == "a@b.example" and notice.key == "row-1" and notice.subject == "You are invited to Acme"
    assert "inv_123" in notice.body and "as company admin" in notice.body and "2026-12-04" in notice.body
    assert invitation_notices({"token": "inv_123"}, "row-2") == []  # nobody to tell


def test_an_overdue_reminder_goes_to_each_admin_once() -> None:
    notices = overdue_notices({"to": ["a@x.example", "b@x.example", ""], "company_name": "Acme", "amount": 123456,
                               "currency_code": "usd", "invoice_id": "inv", "due_at": "2026-11-01",
                               "days_overdue": 3, "payment_terms": "net30"}, "row")
    assert [(n.to, n.key) for n in notices] == [("a@x.example", "row:0"), ("b@x.example", "row:1")]
    assert notices[0].subject == "Overdue invoice: 1,234.56 USD" and "3 day(s) overdue" in notices[0].body


def test_amounts_read_as_people_write_them() -> None:
    assert format_minor(5, "eur") == "0.05 EUR"
    assert format_minor(-1050, "usd") == "-10.50 USD"
    assert format_minor(1200, "jpy") == "1,200 JPY"


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_formatting_keeps_every_minor_unit(amount: int) -> None:
    number = format_minor(amount, "usd").removesuffix(" USD").replace(",", "")
    assert round(float(number) * 100) == amount
