"""The runtime file: where a running `cityos serve` publishes its embedded services, so that the CLI
(`cityos jobs run`, `migrate`, `seed`, …) uses them instead of starting a second Postgres on the same data.

`<CITYOS_DATA_DIR>/runtime.json` is written once the services are up, rewritten when one of them is restarted,
and removed when the server stops. A file left by a server that died (SIGKILL, power loss) is stale: its PID is
gone, is a zombie, or now belongs to another process (PID reuse, detected with the process's start time), and it
is ignored.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

RUNTIME_FILE = "runtime.json"


@dataclass(frozen=True)
class Runtime:
    pid: int  # the `cityos serve` process
    process_started: float  # its start time (psutil create_time), so a reused PID is not mistaken for it
    postgres_port: int | None = None  # None: the server does not embed Postgres (DATABASE_URL was set)
    postgres_pid: int | None = None
    cerbos_grpc_port: int | None = None
    cerbos_http_port: int | None = None
    cerbos_pid: int | None = None


def path(data_dir: Path) -> Path:
    return data_dir / RUNTIME_FILE


def _start_time(pid: int) -> float | None:
    """The start time of a live (non-zombie) process, or None."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except psutil.Error:
        return None


def for_this_process(**services: int | None) -> Runtime:
    started = _start_time(os.getpid())
    assert started is not None
    return Runtime(pid=os.getpid(), process_started=started, **services)


def write(data_dir: Path, runtime: Runtime) -> None:
    """Atomically (write a temporary file, then rename): a reader never sees half a file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = data_dir / f".{RUNTIME_FILE}.{os.getpid()}"
    temporary.write_text(json.dumps(asdict(runtime), indent=2) + "\n")
    os.replace(temporary, path(data_dir))


def remove(data_dir: Path) -> None:
    """Remove the file if this process wrote it (never another live server's)."""
    current = read(data_dir)
    if current is not None and current.pid == os.getpid():
        path(data_dir).unlink(missing_ok=True)


def read(data_dir: Path) -> Runtime | None:
    """The file as written, live or not; None when absent or unreadable."""
    try:
        raw = json.loads(path(data_dir).read_text())
        return Runtime(**raw)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as error:
        log.warning("ignoring unreadable %s: %s", path(data_dir), error)
        return None


def read_live(data_dir: Path) -> Runtime | None:
    """The running server's services, or None when no server is running on this data directory."""
    runtime = read(data_dir)
    if runtime is None:
        return None
    started = _start_time(runtime.pid)
    if started is None or abs(started - runtime.process_started) > 1.0:
        log.info("ignoring stale %s: its server (pid %s) is no longer running", path(data_dir), runtime.pid)
        return None
    return runtime
