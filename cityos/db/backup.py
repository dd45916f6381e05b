"""Backups and restores of the platform's database: pg_dump's custom format (compressed, restorable table by table,
with the schema, the row-level-security policies and the app role's grants), and pg_restore into an empty
database.

- `backup(url, path)` writes one consistent snapshot (pg_dump runs in one repeatable-read transaction, so the
  API keeps serving while it runs).
- `restore(url, path)` refuses a database that already has our schema (restore into a new one and point
  DATABASE_URL at it: nothing is overwritten by mistake), creates the cluster-wide app role when the target
  cluster lacks it, and restores in one transaction (all or nothing) without the source's owner names.
- `table_fingerprints(url)` gives each table's row count and an order-independent checksum of its rows: the test
  and the runbook compare a restore with its source with it.

The tools are the embedded Postgres's (the same major version as the embedded server) unless `tools` says where
others are (a managed server needs a pg_dump at least as new as itself).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy import text

from cityos.db.engines import APP_ROLE, create_owner_engine

Tools = Callable[[str], str]


class BackupError(RuntimeError):
    pass


def libpq_url(url: str) -> str:
    """SQLAlchemy's URL (postgresql+asyncpg://…) as libpq takes it (postgresql://…)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    return parts._replace(scheme="postgresql" if scheme in {"postgres", "postgresql"} else scheme).geturl()


def _environment(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and the environment carrying it (never on a command line)."""
    parts = urlsplit(libpq_url(url))
    environment = dict(os.environ)
    if parts.password:
        environment["PGPASSWORD"] = unquote(parts.password)
        netloc = parts.netloc.replace(f":{parts.password}@", "@", 1)
        parts = parts._replace(netloc=netloc)
    return parts.geturl(), environment


def _run(argv: list[str], environment: dict[str, str]) -> None:
    result = subprocess.run(argv, env=environment, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{Path(argv[0]).name} failed: {result.stderr.strip() or result.stdout.strip()}")


def backup(url: str, path: Path, tools: Tools) -> Path:
    target, environment = _environment(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    _run([tools("pg_dump"), "--format=custom", "--compress=6", f"--file={partial}", f"--dbname={target}"],
         environment)
    partial.replace(path)  # a backup file is complete or absent
    return path


async def _prepare_target(url: str) -> None:
    engine = create_owner_engine(url)
    try:
        async with engine.begin() as connection:
            if (await connection.execute(text("select to_regclass('public.alembic_version') is not null"))).scalar():
                raise BackupError("the target database already has the CityOS schema: restore into a new, empty "
                                  "database (createdb) and point DATABASE_URL at it")
            await connection.execute(text(f"""
                do $$ begin
                  if not exists (select 1 from pg_roles where rolname = '{APP_ROLE}') then
                    create role {APP_ROLE} nologin nobypassrls;
                  end if;
                end $$"""))
            await connection.execute(text(f"grant {APP_ROLE} to current_user"))
    finally:
        await engine.dispose()


async def restore(url: str, path: Path, tools: Tools) -> None:
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    await _prepare_target(url)
    target, environment = _environment(url)
    _run([tools("pg_restore"), "--no-owner", "--exit-on-error", "--single-transaction", f"--dbname={target}",
          str(path)], environment)


async def table_fingerprints(url: str) -> dict[str, tuple[int, str]]:
    """Per table of the public schema: (rows, md5 of the sorted rows' text)."""
    engine = create_owner_engine(url)
    try:
        async with engine.connect() as connection:
            tables = (await connection.execute(text(
                "select tablename from pg_tables where schemaname = 'public' order by tablename"))).scalars().all()
            fingerprints = {}
            for table in tables:
                row = (await connection.execute(text(
                    "select count(*), md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) "
                    f'from public."{table}" t'))).one()
                fingerprints[table] = (int(row[0]), str(row[1]))
            return fingerprints
    finally:
        await engine.dispose()
