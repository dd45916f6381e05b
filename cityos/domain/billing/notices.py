"""What a subscription's customer is told, and in which words: the `billing.customer_notice` outbox rows
(renewals.notify_customer writes them) rendered as notices for the notification port (platform/notifications.py).
Pure: the row's payload in, the notice out."""

from __future__ import annotations

from typing import Any

from cityos.domain.platform.notifications import Notice

SUBJECTS = {
    "renewal_skipped": "Your subscription's delivery was skipped",
    "payment_failed": "Your subscription's payment failed",
    "action_required": "Please confirm your subscription's payment",
    "canceled": "Your subscription was canceled",
    "paused": "Your subscription was paused",
    "setup_failed": "Your subscription could not start",
    "incomplete_expired": "Your subscription did not start",
}


def _body(kind: str, details: dict[str, Any]) -> str:
    if kind == "renewal_skipped":
        return ("We could not renew your subscription this period and did not charge you: "
                f"{details.get('reason') or 'the item is unavailable'}. It renews again next period.")
    if kind == "payment_failed":
        retry = details.get("next_retry_at")
        return ("Your card was declined for your subscription's renewal"
                + (f" ({details['decline_code']})" if details.get("decline_code") else "") + ". "
                + (f"We will try again on {retry}. " if retry else "")
                + "You can update your card in your account.")
    if kind == "action_required":
        return ("Your bank asks you to confirm your subscription's renewal. Please sign in to your account and "
                "confirm the payment" + (f" before {details['next_retry_at']}" if details.get("next_retry_at")
                                         else "") + ".")
    if kind == "canceled":
        return "Your subscription was canceled. You will not be charged again."
    if kind == "paused":
        return "Your subscription was paused after its payment could not be collected. Resume it in your account."
    if kind == "setup_failed":
        return ("Your card could not be set up for your subscription, so it did not start. Please subscribe again "
                "with another card.")
    if kind == "incomplete_expired":
        return ("Your subscription did not start: its payment was not confirmed within a day, and nothing was "
                "charged. Please subscribe again.")
    return "There is news about your subscription. Please check your account."


def notice_of(payload: dict[str, Any], key: str) -> Notice | None:
    """The notice of a `billing.customer_notice` payload; None when it names no email (nobody to tell)."""
    email = payload.get("email")
    if not email:
        return None
    kind = str(payload.get("kind") or "")
    subscription = payload.get("subscription_id") or ""
    body = _body(kind, payload) + f"\n\nSubscription: {subscription}\n"
    return Notice(to=str(email), subject=SUBJECTS.get(kind, "About your subscription"), body=body, key=key)
