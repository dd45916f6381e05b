"""`cityos …`: serve, migrate, seed, token, jobs, schema export.

Every command works beside a running `cityos serve`: it uses the server's embedded Postgres (found through the
runtime file in CITYOS_DATA_DIR) rather than starting a second one on the same data."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cityos.config import ConfigurationError, Settings, load_settings

if TYPE_CHECKING:
    from cityos.embedded.stack import Started

app = typer.Typer(help="CityOS Commerce", no_args_is_help=True, add_completion=False)
schema_app = typer.Typer(help="GraphQL schema tools", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
jobs_app = typer.Typer(help="Scheduled jobs", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "graphql" / "schema.graphql"


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None


@contextmanager
def _services(settings: Settings, *, cerbos: bool = False, serve: bool = False) -> Iterator[Started]:
    """The embedded services the command needs: a running server's, or its own. A service that cannot start is
    one clear message and exit code 1, not a traceback."""
    from cityos.embedded.process import EmbeddedError
    from cityos.embedded.stack import embedded_services

    with ExitStack() as stack:
        try:
            started = stack.enter_context(embedded_services(settings, cerbos=cerbos, serve=serve))
        except EmbeddedError as error:
            typer.echo(f"cityos: {error}", err=True)
            raise typer.Exit(1) from None
        yield started


def _raise_interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@app.command()
def serve() -> None:
    """Run the API; start embedded Postgres and Cerbos for whatever URL is not set."""
    from cityos.observability.logs import configure_logging

    settings = _settings()
    configure_logging(settings.LOG_LEVEL)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # until uvicorn takes over: stop children in order
    try:
        with _services(settings, cerbos=True, serve=True) as started:
            _serve(started.settings, started.notes)
    except KeyboardInterrupt:
        pass
    typer.echo("cityos stopped; every child process has been stopped.")


def _serve(settings: Settings, notes: list[str]) -> None:
    import uvicorn

    from cityos.app import create_app
    from cityos.db import migrate

    assert settings.DATABASE_URL
    migrate.upgrade(settings.DATABASE_URL)
    seeded = asyncio.run(_seed(settings)) if not settings.is_production else None
    url = f"http://{settings.CITYOS_HOST}:{settings.CITYOS_PORT}"
    lines = ["", "CityOS Commerce is starting", f"  pid       {os.getpid()} (SIGTERM or Ctrl-C stops everything)",
             *(f"  {note}" for note in notes), f"  graphql   {url}/graphql  (GraphiQL in a browser)",
             f"  health    {url}/health/ready   metrics {url}/metrics"]
    if seeded is not None:
        lines += [f"  demo      store 'Demo Store', domain {seeded.domain}",
                  f"  demo key  x-publishable-api-key: {seeded.publishable_key}"]
    typer.echo("\n".join(lines) + "\n")
    sys.stdout.flush()
    from cityos.http.protocol import with_header_timeout

    options: dict[str, Any] = {
        "host": settings.CITYOS_HOST, "port": settings.CITYOS_PORT, "log_config": None, "access_log": False,
        "lifespan": "on", "ws": "cityos.http.frames:FrameProtocol", "proxy_headers": False, "server_header": False,
        "timeout_graceful_shutdown": 10}
    if settings.CITYOS_WORKERS > 1:
        _serve_workers(settings, options)
        return
    config = uvicorn.Config(create_app(settings), http=with_header_timeout(settings.CITYOS_HEADER_TIMEOUT),
                            **options)
    server = uvicorn.Server(config)
    if settings.CITYOS_GC_TUNING:
        tune_garbage_collector()
    server.run()


def _serve_workers(settings: Settings, options: dict[str, Any]) -> None:
    """CITYOS_WORKERS uvicorn processes on one socket (uvicorn's supervisor restarts a worker that dies). Each
    builds its app from the environment (`worker_app`), which names the Postgres and Cerbos started here."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    os.environ.update({name: str(value) for name, value in (
        ("DATABASE_URL", settings.DATABASE_URL), ("CERBOS_URL", settings.CERBOS_URL),
        ("REDIS_URL", settings.REDIS_URL), ("CITYOS_DATA_DIR", settings.CITYOS_DATA_DIR),
        ("CITYOS_HEADER_TIMEOUT", settings.CITYOS_HEADER_TIMEOUT)) if value is not None})
    config = uvicorn.Config("cityos.cli:worker_app", factory=True, workers=settings.CITYOS_WORKERS,
                            http="cityos.http.protocol:WorkerHeaderTimeoutProtocol", **options)
    Multiprocess(config, sockets=[config.bind_socket()]).run()


def worker_app() -> Any:
    """The app of one worker process of `cityos serve` with CITYOS_WORKERS > 1."""
    from cityos.app import create_app
    from cityos.observability.logs import configure_logging

    settings = load_settings()
    configure_logging(settings.LOG_LEVEL)
    app = create_app(settings)
    if settings.CITYOS_GC_TUNING:
        tune_garbage_collector()
    return app


def tune_garbage_collector() -> None:
    """The schema, the app and the imported modules live as long as the process: move them out of the cyclic
    collector's sight (gc.freeze) and let young generations grow larger before a collection, which otherwise
    runs every few hundred allocations of a GraphQL response and dominates under load."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


async def _seed(settings: Settings):  # type: ignore[no-untyped-def]
    from cityos.db.engines import create_owner_engine
    from cityos.seed import seed

    assert settings.DATABASE_URL
    engine = create_owner_engine(settings.DATABASE_URL)
    try:
        return await seed(engine, settings.CITYOS_DATA_DIR)
    finally:
        await engine.dispose()


@app.command("migrate")
def migrate_command(
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
    down: Annotated[bool, typer.Option("--down", help="downgrade to the revision (default: base)")] = False,
) -> None:
    """Apply (or revert) database migrations as the database owner."""
    from cityos.db import migrate

    with _services(_settings()) as started:
        assert started.settings.DATABASE_URL
        if down:
            migrate.downgrade(started.settings.DATABASE_URL, "base" if revision == "head" else revision)
        else:
            migrate.upgrade(started.settings.DATABASE_URL, revision)
    typer.echo("migrations applied")


def _postgres_tools(name: str) -> str:
    """pg_dump / pg_restore: CITYOS_PG_BIN's when set (a managed server newer than ours), else the embedded
    Postgres's."""
    if directory := os.environ.get("CITYOS_PG_BIN"):
        return str(Path(directory) / name)
    from cityos.embedded.postgres import _bin

    return _bin(name)


@app.command("backup")
def backup_command(
    path: Annotated[Path, typer.Argument(help="the backup file to write (pg_dump custom format)")],
) -> None:
    """Back up the database (DATABASE_URL, or the embedded one) into one file."""
    from cityos.db.backup import BackupError, backup

    with _services(_settings()) as started:
        assert started.settings.DATABASE_URL
        try:
            backup(started.settings.DATABASE_URL, path, _postgres_tools)
        except BackupError as error:
            typer.echo(f"cityos: {error}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"backed up to {path} ({path.stat().st_size} bytes)")


@app.command("restore")
def restore_command(
    path: Annotated[Path, typer.Argument(help="a file written by `cityos backup`")],
) -> None:
    """Restore a backup into DATABASE_URL, which must be a new, empty database."""
    from cityos.db.backup import BackupError, restore, table_fingerprints

    with _services(_settings()) as started:
        assert started.settings.DATABASE_URL
        try:
            asyncio.run(restore(started.settings.DATABASE_URL, path, _postgres_tools))
        except BackupError as error:
            typer.echo(f"cityos: {error}", err=True)
            raise typer.Exit(1) from None
        tables = asyncio.run(table_fingerprints(started.settings.DATABASE_URL))
    typer.echo(f"restored {path}: {len(tables)} tables, {sum(rows for rows, _ in tables.values())} rows")


@app.command("seed")
def seed_command() -> None:
    """Load the seed data (idempotent)."""
    from cityos.db import migrate

    with _services(_settings()) as started:
        assert started.settings.DATABASE_URL
        migrate.upgrade(started.settings.DATABASE_URL)
        result = asyncio.run(_seed(started.settings))
    typer.echo(f"seeded: demo store {result.store_id} (domain {result.domain}); "
               f"publishable key {result.publishable_key}")


@app.command("token")
def token_command(
    role: Annotated[list[str], typer.Option("--role", help="super_admin, tenant_admin, store_admin, vendor_admin, "
                                            "vendor_user, company_admin, company_buyer or customer (repeatable)")],
    tenant: Annotated[str | None, typer.Option("--tenant", help="tenant slug or id")] = None,
    store: Annotated[list[str] | None, typer.Option("--store", help="store handle or id (repeatable)")] = None,
    vendor: Annotated[str | None, typer.Option("--vendor", help="vendor id")] = None,
    company: Annotated[str | None, typer.Option("--company", help="company id")] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="the token's sub (default: a new id)")] = None,
    ttl: Annotated[int, typer.Option("--ttl", help="lifetime in seconds", min=1, max=7 * 24 * 3600)] = 3600,
) -> None:
    """Print a development access token (Keycloak-shaped, signed by the local dev issuer key)."""
    import uuid

    from cityos.auth import dev_issuer
    from cityos.auth.principal import ROLES

    settings = _settings()
    if not settings.dev_tokens_trusted:
        typer.echo("the development issuer is not trusted here (CITYOS_ENV=production)", err=True)
        raise typer.Exit(2)
    unknown = sorted(set(role) - ROLES)
    if unknown:
        typer.echo(f"unknown role(s): {', '.join(unknown)}; known: {', '.join(sorted(ROLES))}", err=True)
        raise typer.Exit(2)
    key_file = settings.CITYOS_DATA_DIR.resolve() / dev_issuer.KEY_FILE
    if not key_file.is_file():
        # Creating a key here would sign tokens no server trusts (it reads its key when it starts).
        typer.echo(f"cityos: no development signing key at {key_file}; `cityos serve` creates it when it starts: "
                   "set CITYOS_DATA_DIR to that server's data directory", err=True)
        raise typer.Exit(1)
    claims = dev_issuer.keycloak_shaped_claims(
        subject=subject or str(uuid.uuid4()), roles=role, tenant=tenant, stores=list(store or []), vendor=vendor,
        company=company, ttl_seconds=ttl, client_id=settings.KEYCLOAK_CLIENT_ID)
    try:
        token = dev_issuer.mint(settings.CITYOS_DATA_DIR.resolve(), claims)
    except (OSError, ValueError) as error:
        typer.echo(f"cityos: cannot use the development signing key {key_file}: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(token)


@jobs_app.command("list")
def jobs_list() -> None:
    """Name every job with its schedule (cron, UTC), timeout, scope and description."""
    from cityos.jobs.registry import JOBS

    for job in JOBS.values():
        scope = "per-tenant" if job.per_tenant else "global"
        typer.echo(f"{job.name:32} {job.schedule:14} {job.timeout:>6g}s {scope:10} {job.description}")


@jobs_app.command("run")
def jobs_run(
    name: Annotated[str, typer.Argument(help="the job's name (see `cityos jobs list`)")],
    on_schedule: Annotated[bool, typer.Option(
        "--on-schedule", help="run the job's latest due tick, unless a scheduler or another runner has (what a "
                              "Kubernetes CronJob calls); without it, a run by hand, now")] = False,
) -> None:
    """Run one job now; the run is recorded (jobRuns). Exit code 1 when it fails or times out."""
    from cityos.db.engines import create_app_engine
    from cityos.integrations.stripe.client import create_stripe_client
    from cityos.jobs.registry import JOBS, JobContext
    from cityos.jobs.scheduler import run_now, summary_of

    job = JOBS.get(name)
    if job is None:
        typer.echo(f"unknown job {name!r}; known: {', '.join(JOBS)}", err=True)
        raise typer.Exit(2)

    async def run(settings: Settings) -> Any:
        import httpx

        from cityos.realtime import create_broker

        assert settings.DATABASE_URL
        engine = create_app_engine(settings.DATABASE_URL, pool_size=2)
        broker = create_broker(settings.REDIS_URL)
        try:
            async with httpx.AsyncClient() as http:
                context = JobContext(engine, settings, create_stripe_client(settings), http, broker)
                return await run_now(job, context, on_schedule=on_schedule)
        finally:
            await broker.close()
            await engine.dispose()

    with _services(_settings()) as started:
        row = asyncio.run(run(started.settings))
    if row is None:
        typer.echo(f"{name}: the tick was run already")
        return
    typer.echo(f"{name}: {summary_of(row.counts)}")
    if row.outcome != "ok":
        typer.echo(f"{name}: {row.outcome}: {row.error}", err=True)
        raise typer.Exit(1)


@jobs_app.command("manifests")
def jobs_manifests(
    path: Annotated[Path | None, typer.Option("--path", help="where to write them (default "
                                                             "deploy/k8s/base/cronjobs.yaml)")] = None,
) -> None:
    """Write the Kubernetes CronJobs of every job (a test fails when they are stale)."""
    from cityos.jobs.manifests import MANIFESTS_PATH, render
    from cityos.jobs.registry import JOBS

    target = path or MANIFESTS_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(JOBS))
    typer.echo(f"wrote {target}")


@schema_app.command("export")
def schema_export(
    path: Annotated[Path, typer.Option("--path", help="where to write the SDL")] = SCHEMA_PATH,
) -> None:
    """Write the GraphQL SDL (graphql/schema.graphql); a test fails when it is stale."""
    from cityos.graphql.schema import schema

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema.export_sdl())
    typer.echo(f"wrote {path}")


def main() -> None:
    app()
