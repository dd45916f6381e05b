"""Pure tenancy rules: handles, host names, publishable keys."""

from __future__ import annotations

import hashlib
import re
import secrets

from cityos.errors import BadUserInput

HANDLE_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
LABEL_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
PUBLISHABLE_KEY_PREFIX = "pk_"
PUBLISHABLE_KEY_PATTERN = re.compile(r"^pk_[A-Za-z0-9_-]{20,100}$")


def validate_handle(value: str, field: str = "handle") -> str:
    """A URL-safe identifier: lower-case letters, digits and inner hyphens, 1–63 characters."""
    handle = value.strip()
    if not HANDLE_PATTERN.match(handle):
        raise BadUserInput(
            f"{field} must be 1-63 lower-case letters, digits or inner hyphens", field=field)
    return handle


def validate_name(value: str, field: str = "name", max_length: int = 200) -> str:
    name = " ".join(value.split())
    if not name or len(name) > max_length:
        raise BadUserInput(f"{field} must be 1-{max_length} characters", field=field)
    return name


def normalize_domain(value: str) -> str:
    """A host name as a request's Host header carries it: lower case, no port, no trailing dot, no scheme.

    Raises BadUserInput for anything that is not a valid DNS host name with at least two labels.
    """
    host = value.strip().lower().rstrip(".")
    if ":" in host:
        host = host.rsplit(":", 1)[0] if host.rsplit(":", 1)[1].isdigit() else host
    labels = host.split(".")
    if (len(host) > 253 or len(labels) < 2
            or not all(LABEL_PATTERN.match(label) for label in labels)
            or labels[-1].isdigit()):
        raise BadUserInput("domain must be a host name such as shop.example.com", field="domain")
    return host


def host_of(header_value: str) -> str | None:
    """The host name of a Host header, or None when it is not a usable host name."""
    try:
        return normalize_domain(header_value)
    except BadUserInput:
        return None


def new_publishable_key() -> str:
    return PUBLISHABLE_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_publishable_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def redact_publishable_key(key: str) -> str:
    return f"{key[:7]}…{key[-4:]}"


def is_well_formed_publishable_key(key: str) -> bool:
    return bool(PUBLISHABLE_KEY_PATTERN.match(key))


MAX_RETURN_WINDOW_DAYS = 3650


def validate_return_window(days: int) -> int:
    """A store's return window: whole days after delivery, 0 (no returns) to 3650."""
    if not 0 <= days <= MAX_RETURN_WINDOW_DAYS:
        raise BadUserInput(f"the return window is 0 to {MAX_RETURN_WINDOW_DAYS} days", field="returnWindowDays")
    return days
