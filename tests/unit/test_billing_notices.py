"""The words of the billing notices (pure) and the SMTP adapter's URL (pure)."""

from __future__ import annotations

import pytest

from cityos.domain.billing.notices import SUBJECTS, notice_of
from cityos.integrations.smtp.client import SmtpServer


def test_every_kind_the_billing_code_writes_has_its_own_subject_and_words() -> None:
    base = {"subscription_id": "s1", "customer_id": "c1", "email": "ada@example.com"}
    bodies = set()
    for kind in SUBJECTS:
        notice = notice_of({**base, "kind": kind, "reason": "NW-TEE-S is out of stock",
                            "decline_code": "insufficient_funds", "next_retry_at": "2026-12-01"}, "key-1")
        assert notice is not None and notice.to == "ada@example.com" and notice.key == "key-1"
        assert notice.subject == SUBJECTS[kind] and "Subscription: s1" in notice.body
        bodies.add(notice.body)
    assert len(bodies) == len(SUBJECTS)
    skipped = notice_of({**base, "kind": "renewal_skipped", "reason": "NW-TEE-S is out of stock"}, "k")
    assert skipped is not None and "NW-TEE-S is out of stock" in skipped.body and "did not charge" in skipped.body
    failed = notice_of({**base, "kind": "payment_failed", "decline_code": "insufficient_funds",
                        "next_retry_at": "2026-12-01"}, "k")
    assert failed is not None and "insufficient_funds" in failed.body and "2026-12-01" in failed.body


def test_a_notice_without_an_email_is_for_nobody_and_an_unknown_kind_still_reads() -> None:
    assert notice_of({"kind": "canceled", "subscription_id": "s1", "email": None}, "k") is None
    other = notice_of({"kind": "something_new", "subscription_id": "s1", "email": "a@example.com"}, "k")
    assert other is not None and other.subject == "About your subscription"


def test_smtp_urls() -> None:
    assert SmtpServer.parse("smtp://mail.example") == SmtpServer("mail.example", 25, False, None, None)
    assert SmtpServer.parse("smtps://us%40er:p%2Fw@mail.example") == SmtpServer("mail.example", 465, True, "us@er",
                                                                                "p/w")
    assert SmtpServer.parse("smtp://u:p@127.0.0.1:2525").port == 2525
    for bad in ("http://mail.example", "smtp://", "mail.example:25"):
        with pytest.raises(ValueError, match="CITYOS_SMTP_URL"):
            SmtpServer.parse(bad)
