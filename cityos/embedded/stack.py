"""Start what the settings do not point at: embedded Postgres when DATABASE_URL is unset, the Cerbos binary when
CERBOS_URL is unset. Redis has no embedded stand-in: without REDIS_URL the broker is in-process."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from cityos.config import Settings


@dataclass
class Started:
    settings: Settings
    notes: list[str] = field(default_factory=list)


@contextmanager
def embedded_services(settings: Settings, *, cerbos: bool = True) -> Iterator[Started]:
    updates: dict[str, str] = {}
    notes: list[str] = []
    with ExitStack() as stack:
        if not settings.DATABASE_URL:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on import
                from cityos.embedded.postgres import EmbeddedPostgres
            postgres = EmbeddedPostgres(settings.CITYOS_DATA_DIR.resolve() / "postgres")
            postgres.start()
            stack.callback(postgres.stop)
            updates["DATABASE_URL"] = postgres.url()
            notes.append(f"postgres  embedded, pid {postgres.child.pid if postgres.child else '?'}, "
                         f"127.0.0.1:{postgres.port}, data in {postgres.data_dir}")
        else:
            notes.append("postgres  external (DATABASE_URL)")
        if cerbos and not settings.CERBOS_URL:
            from cityos.embedded.cerbos import EmbeddedCerbos

            pdp = EmbeddedCerbos(settings.CITYOS_POLICY_DIR, settings.CITYOS_DATA_DIR.resolve() / "cerbos")
            pdp.start()
            stack.callback(pdp.stop)
            updates["CERBOS_URL"] = pdp.url
            notes.append(f"cerbos    embedded, pid {pdp.child.pid if pdp.child else '?'}, gRPC {pdp.grpc_address}, "
                         f"HTTP 127.0.0.1:{pdp.http_port}, policies {settings.CITYOS_POLICY_DIR.resolve()} (watched)")
        elif cerbos:
            notes.append("cerbos    external (CERBOS_URL)")
        notes.append("broker    redis (REDIS_URL)" if settings.REDIS_URL else "broker    in-process (no REDIS_URL)")
        yield Started(settings.model_copy(update=updates), notes)
