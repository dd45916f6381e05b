"""What company people are told by email, and in which words: the `b2b.invitation` outbox rows (invitations.py)
and the `b2b.invoice_overdue` reminders (overdue.py) rendered as notices for the notification port
(platform/notifications.py). Pure: the row's payload in, the notices out (one per recipient)."""

from __future__ import annotations

from typing import Any

from cityos.domain.platform.notifications import Notice

# Stripe's zero-decimal currencies: their minor unit is the unit.
ZERO_DECIMAL = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
                          "xaf", "xof", "xpf"})


def format_minor(amount: int, currency_code: str) -> str:
    """An amount in minor units as a person reads it: 123456 usd → "1,234.56 USD", 1200 jpy → "1,200 JPY"."""
    code = currency_code.lower()
    if code in ZERO_DECIMAL:
        return f"{amount:,} {code.upper()}"
    sign = "-" if amount < 0 else ""
    units, cents = divmod(abs(amount), 100)
    return f"{sign}{units:,}.{cents:02d} {code.upper()}"


def invitation_notices(payload: dict[str, Any], key: str) -> list[Notice]:
    """The invitation to its one recipient: who invites them to which company, with which role, and the token to
    accept it with (the only place the token is written down)."""
    email = payload.get("to")
    if not email:
        return []
    role = str(payload.get("role") or "company_buyer").replace("_", " ")
    body = (f"{payload.get('invited_by') or 'A company administrator'} invites you to join "
            f"{payload.get('company_name') or 'their company'} as {role}.\n\n"
            f"Sign in with this email address ({email}) and accept the invitation with this token:\n\n"
            f"    {payload.get('token')}\n\n"
            f"It expires on {payload.get('expires_at')}. If you did not expect it, ignore this message.\n")
    return [Notice(to=str(email), subject=f"You are invited to {payload.get('company_name') or 'a company'}",
                   body=body, key=key)]


def overdue_notices(payload: dict[str, Any], key: str) -> list[Notice]:
    """An overdue invoice's reminder to each of the company's admins (one notice per admin, keyed apart)."""
    amount = format_minor(int(payload.get("amount") or 0), str(payload.get("currency_code") or ""))
    body = (f"The invoice {payload.get('invoice_id')} of {payload.get('company_name') or 'your company'} "
            f"({amount}, {payload.get('payment_terms')}) was due on {payload.get('due_at')} and is "
            f"{payload.get('days_overdue')} day(s) overdue. New orders on account are on hold until it is paid.\n")
    recipients = payload.get("to") or []
    return [Notice(to=str(email), subject=f"Overdue invoice: {amount}", body=body, key=f"{key}:{index}")
            for index, email in enumerate(recipients if isinstance(recipients, list) else [recipients]) if email]
