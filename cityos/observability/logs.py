"""Structured JSON logs carrying the request id and tenant id of the request being served."""

from __future__ import annotations

import contextvars
import logging
import sys
import time
import traceback
from types import TracebackType

import orjson
from sqlalchemy.exc import StatementError

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
tenant_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("tenant_id", default=None)

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (request_id := request_id_var.get()) is not None:
            entry["request_id"] = request_id
        if (tenant_id := tenant_id_var.get()) is not None:
            entry["tenant_id"] = tenant_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()

    def formatException(self, exc_info: tuple[type[BaseException], BaseException, TracebackType | None]
                        | tuple[None, None, None]) -> str:
        return redacted_traceback(exc_info[1]) if exc_info[1] is not None else ""


def _is_database_error(error: BaseException) -> bool:
    return isinstance(error, StatementError) or type(error).__module__.startswith(("asyncpg", "sqlalchemy.dialects"))


def _safe_message(error: BaseException) -> str:
    """A database error's message may quote the values it was given (emails, addresses): keep its SQLSTATE and
    the statement (whose parameters are placeholders), never the text."""
    if not _is_database_error(error):
        return str(error)
    original = getattr(error, "orig", None) or error
    sqlstate = getattr(original, "sqlstate", None) or getattr(getattr(original, "__cause__", None), "sqlstate", None)
    statement = getattr(error, "statement", None)
    return f"sqlstate={sqlstate or 'unknown'}" + (f" [SQL: {statement}]" if statement else "")


def redacted_traceback(error: BaseException) -> str:
    """The traceback of an exception and its causes, with database errors' messages redacted."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    parts = []
    for index, item in enumerate(reversed(chain)):
        if index:
            parts.append("\nThe above exception led to the following exception:\n\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(item.__traceback__))
        parts.append(f"{type(item).__module__}.{type(item).__qualname__}: {_safe_message(item)}\n")
    return "".join(parts).rstrip("\n")


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if level.lower() != "warn" else "WARNING")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel("WARNING")
    logging.getLogger("alembic").setLevel("WARNING")
