"""The `state` of a Stripe Connect OAuth request: bound to a vendor and the caller, signed (HMAC-SHA256 with
JWT_SECRET), expiring, and usable once (its nonce is recorded when redeemed)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import orjson

from cityos.errors import BadUserInput

STATE_TTL_SECONDS = 600


@dataclass(frozen=True)
class ConnectState:
    vendor_id: uuid.UUID
    principal_id: str
    nonce: str


def _mac(secret: str, payload: bytes) -> str:
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def sign_state(secret: str, vendor_id: uuid.UUID, principal_id: str, now: float | None = None) -> str:
    payload = orjson.dumps({"v": str(vendor_id), "p": principal_id, "n": secrets.token_hex(16),
                            "e": int((now or time.time()) + STATE_TTL_SECONDS)})
    return f"{base64.urlsafe_b64encode(payload).decode().rstrip('=')}.{_mac(secret, payload)}"


def verify_state(secret: str, state: str, principal_id: str, now: float | None = None) -> ConnectState:
    """The state's content, if it is ours, unexpired and issued to this caller; BAD_USER_INPUT otherwise."""
    try:
        encoded, mac = state.split(".", 1)
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        content = orjson.loads(payload)
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise BadUserInput("invalid state", field="state") from None
    if not hmac.compare_digest(mac, _mac(secret, payload)):
        raise BadUserInput("invalid state", field="state")
    if int(content.get("e", 0)) < (now or time.time()):
        raise BadUserInput("the state has expired: start the connection again", field="state")
    if content.get("p") != principal_id:
        raise BadUserInput("the state was issued to someone else", field="state")
    return ConnectState(uuid.UUID(content["v"]), content["p"], str(content["n"]))
