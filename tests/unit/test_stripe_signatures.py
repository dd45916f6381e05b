"""Webhook signatures, checked with the stripe SDK's own signing (external-apis.md §1)."""

from __future__ import annotations

import time

import stripe

from cityos.integrations.stripe.webhooks import signed_by_stripe

PLATFORM = "whsec_platform_" + "p" * 24
CONNECT = "whsec_connect_" + "c" * 24
BODY = b'{"id": "evt_1", "object": "event", "type": "account.updated"}'


def header(secret: str, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(BODY.decode(), secret, timestamp=timestamp)


def test_either_endpoint_secret_verifies_and_nothing_else_does() -> None:
    both = f"{PLATFORM}, {CONNECT}"
    assert signed_by_stripe(BODY, header(PLATFORM), both)
    assert signed_by_stripe(BODY, header(CONNECT), both)
    assert signed_by_stripe(BODY, header(PLATFORM), PLATFORM)
    assert not signed_by_stripe(BODY, header(CONNECT), PLATFORM)
    assert not signed_by_stripe(BODY, header("whsec_other"), both)
    assert not signed_by_stripe(BODY + b" ", header(PLATFORM), both)  # the raw body, byte for byte
    assert not signed_by_stripe(BODY, header(PLATFORM, int(time.time()) - 3600), both)  # stale
    assert not signed_by_stripe(BODY, None, both)
    assert not signed_by_stripe(BODY, header(PLATFORM), ",")
