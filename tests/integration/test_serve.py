"""`cityos serve` on its embedded defaults, as `make run` starts it: serves, stops every child, restarts on the
same data."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from cityos.embedded import runtime
from cityos.embedded.process import free_port
from tests.infrastructure import PROJECT_ROOT


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of `make run` on data_dir: embedded defaults, and this checkout's code importable from any
    working directory."""
    env = {key: value for key, value in os.environ.items()
           if key not in {"DATABASE_URL", "CERBOS_URL", "REDIS_URL", "CITYOS_ENV"}}
    env.update(CITYOS_DATA_DIR=str(data_dir), PYTHONPATH=str(PROJECT_ROOT), **extra)
    return env


def start(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = cli_env(data_dir, CITYOS_PORT=str(port), LOG_LEVEL="warning")
    return subprocess.Popen([sys.executable, "-m", "cityos", "serve"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def cli(data_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`cityos ARGS` as a user runs it from cwd with CITYOS_DATA_DIR=data_dir."""
    return subprocess.run([sys.executable, "-m", "cityos", *args], cwd=cwd, env=cli_env(data_dir),
                          capture_output=True, text=True, timeout=120, check=False)


@contextmanager
def served(data_dir: Path) -> Iterator[Served]:
    """`cityos serve` on data_dir, ready; stopped (and its children checked gone) afterwards, even on failure."""
    port = free_port()
    process = start(data_dir, port)
    try:
        output = wait_ready(process, port)
        key = re.search(r"x-publishable-api-key: (pk_\S+)", output)
        assert key, output
        yield Served(process, f"http://127.0.0.1:{port}", output, key.group(1))
    finally:
        if process.poll() is None:
            try:
                stop(process)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    output: str
    key: str

    def store_name(self) -> object:
        response = httpx.post(f"{self.url}/graphql", json={"query": "{ currentStore { name } }"},
                              headers={"x-publishable-api-key": self.key}, timeout=10)
        return response.json()


def wait_ready(process: subprocess.Popen[str], port: int) -> str:
    output = ""
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        output += line
        if "demo key" in line:
            break
        assert process.poll() is None, output
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return output
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(output)


def child_pids(output: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"embedded, pid (\d+)", output)]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    remaining, _ = process.communicate(timeout=60)
    return remaining


def test_serve_runs_the_product_and_sigterm_leaves_nothing_behind(tmp_path: Path) -> None:
    port = free_port()
    process = start(tmp_path, port)
    try:
        output = wait_ready(process, port)
        pids = child_pids(output)
        key = re.search(r"x-publishable-api-key: (pk_\S+)", output)
        assert key and len(pids) == 2, output
        response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ currentStore { name } }"},
                              headers={"x-publishable-api-key": key.group(1)})
        assert response.json() == {"data": {"currentStore": {"name": "Demo Store"}}}
        remaining = stop(process)
        assert process.returncode == 0, remaining
        deadline = time.monotonic() + 10
        while (running := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running, (running, output, remaining)
        assert runtime.read(tmp_path) is None, "the runtime file is removed when the server stops"

        # A second start reuses the data: the same demo key, and seeding adds nothing.
        process = start(tmp_path, port)
        second = wait_ready(process, port)
        assert key.group(1) in second
        stop(process)
    finally:
        if process.poll() is None:  # a failed assertion never leaves a server (and its children) behind
            process.kill()
            process.communicate()


STORES = "{ stores { totalCount } }"


def test_every_command_works_beside_a_running_server(tmp_path: Path) -> None:
    data_dir, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    elsewhere.mkdir()
    with served(data_dir) as server:
        published = runtime.read_live(data_dir)
        assert published is not None and published.pid == server.process.pid, server.output
        assert published.postgres_pid in child_pids(server.output)

        # Jobs, migrations and seeding use the server's Postgres (a second one on the data would fail to start).
        job = cli(data_dir, "jobs", "run", "release-expired-reservations", cwd=elsewhere)
        assert job.returncode == 0, job.stderr
        assert job.stdout.startswith("release-expired-reservations: released 0 reservation(s)"), job.stdout
        migrated = cli(data_dir, "migrate", cwd=elsewhere)
        assert (migrated.returncode, migrated.stdout) == (0, "migrations applied\n"), migrated.stderr
        seeded = cli(data_dir, "seed", cwd=elsewhere)
        assert seeded.returncode == 0 and server.key in seeded.stdout, seeded.stderr
        assert "Traceback" not in job.stderr + migrated.stderr + seeded.stderr

        # A token minted from another directory is signed with the key this server trusts.
        minted = cli(data_dir, "token", "--role", "tenant_admin", "--tenant", "demo", cwd=elsewhere)
        assert minted.returncode == 0, minted.stderr
        response = httpx.post(f"{server.url}/graphql", json={"query": STORES},
                              headers={"authorization": f"Bearer {minted.stdout.strip()}"})
        assert response.json() == {"data": {"stores": {"totalCount": 1}}}

        # A second server on the same data is refused in one line.
        second = subprocess.run([sys.executable, "-m", "cityos", "serve"], cwd=elsewhere, capture_output=True,
                                text=True, timeout=60, env=cli_env(data_dir, CITYOS_PORT=str(free_port())))
        assert second.returncode == 1
        assert second.stderr.strip() == (f"cityos: cityos serve is already running on {data_dir} "
                                         f"(pid {server.process.pid}); stop it, or set another CITYOS_DATA_DIR")
        assert server.store_name() == {"data": {"currentStore": {"name": "Demo Store"}}}
    assert runtime.read(data_dir) is None


def test_token_without_a_key_is_one_clear_error(tmp_path: Path) -> None:
    result = cli(tmp_path / "no-server-here", "token", "--role", "tenant_admin", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    key_file = tmp_path / "no-server-here" / "dev-issuer-key.json"
    assert result.stderr.strip() == (f"cityos: no development signing key at {key_file}; `cityos serve` creates it "
                                     "when it starts: set CITYOS_DATA_DIR to that server's data directory")
    assert not key_file.exists(), "no key nobody trusts is created"
