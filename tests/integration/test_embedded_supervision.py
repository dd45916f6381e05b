"""Supervision of the embedded children: `kill -9` of Postgres or Cerbos under a running `cityos serve` is reaped
and restarted on the same port, the API keeps serving without a restart; stale postmaster.pid and runtime files
are recognised; a child that keeps dying is given up and liveness fails."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.routing import Route

from cityos.embedded import runtime
from cityos.embedded.cerbos import EmbeddedCerbos
from cityos.embedded.postgres import EmbeddedPostgres
from cityos.embedded.process import EmbeddedError
from cityos.embedded.supervisor import State, Supervisor
from cityos.http import health
from tests.infrastructure import PROJECT_ROOT
from tests.integration.test_serve import Served, served

RESTART_BOUND_SECONDS = 15.0


async def eventually(condition: Callable[[], bool], seconds: float = RESTART_BOUND_SECONDS) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)


def restarts(body: str, service: str) -> float:
    found = re.search(rf'^cityos_embedded_restarts_total{{service="{service}"}} (\S+)$', body, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def reaped(pid: int) -> bool:
    """Gone from the process table: neither running nor a zombie waiting for its parent."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_DEAD
    except psutil.NoSuchProcess:
        return True


def kill_and_wait_for_restart(server: Served, data_dir: Path, service: str) -> float:
    published = runtime.read_live(data_dir)
    assert published is not None
    old_pid = getattr(published, f"{service}_pid")
    port = published.postgres_port if service == "postgres" else published.cerbos_grpc_port
    killed_at = time.monotonic()
    os.kill(old_pid, signal.SIGKILL)
    # The supervisor waits 0.5 s before restarting: the server is not ready meanwhile, and says which child.
    ready = httpx.get(f"{server.url}/health/ready", timeout=5)
    assert ready.status_code == 503 and ready.json()["failed"] == [service], ready.text
    assert httpx.get(f"{server.url}/health/live", timeout=5).status_code == 200, "a restart is no liveness failure"
    while time.monotonic() - killed_at < RESTART_BOUND_SECONDS:
        now = runtime.read_live(data_dir)
        if now is not None and getattr(now, f"{service}_pid") != old_pid and \
                httpx.get(f"{server.url}/health/ready", timeout=5).status_code == 200:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"{service} not back within {RESTART_BOUND_SECONDS}s: "
                             f"{httpx.get(f'{server.url}/health/ready', timeout=5).text}")
    elapsed = time.monotonic() - killed_at
    assert reaped(old_pid), f"the killed {service} (pid {old_pid}) is still in the process table"
    assert now is not None and psutil.Process(getattr(now, f"{service}_pid")).ppid() == server.process.pid
    assert (now.postgres_port if service == "postgres" else now.cerbos_grpc_port) == port, "same port"
    print(f"{service}: killed → restarted and ready in {elapsed:.1f}s")
    return elapsed


def test_a_killed_child_is_reaped_and_restarted_while_the_api_keeps_serving(tmp_path: Path) -> None:
    with served(tmp_path) as server:
        metrics = httpx.get(f"{server.url}/metrics").text
        before = {service: restarts(metrics, service) for service in ("postgres", "cerbos")}
        for service in ("postgres", "cerbos"):
            kill_and_wait_for_restart(server, tmp_path, service)
            # The first request after the restart succeeds: the pool and the gRPC channel reconnected themselves.
            assert server.store_name() == {"data": {"currentStore": {"name": "Demo Store"}}}
        metrics = httpx.get(f"{server.url}/metrics").text
        for service in ("postgres", "cerbos"):
            assert restarts(metrics, service) >= before[service] + 1, metrics
            assert f'cityos_embedded_up{{service="{service}"}} 1.0' in metrics
        assert server.process.poll() is None, "the API itself was never restarted"
        assert httpx.get(f"{server.url}/health/live").json() == {"status": "ok"}
        published = runtime.read_live(tmp_path)
        assert published is not None
        restarted = [published.postgres_pid, published.cerbos_pid]
    # Stopping still leaves nothing behind, including the restarted children, and removes the runtime file.
    deadline = time.monotonic() + 10
    while not all(reaped(pid) for pid in restarted if pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(reaped(pid) for pid in restarted if pid), restarted
    assert runtime.read(tmp_path) is None


def test_postgres_starts_over_a_stale_postmaster_pid_but_never_over_a_live_one(tmp_path: Path) -> None:
    postgres = EmbeddedPostgres(tmp_path / "postgres", fast_and_unsafe=True)
    postgres.start()
    postgres.stop()
    # A lock file naming a live process that is not postgres (a reused PID): removed, the start proceeds.
    postgres.lock_file.write_text(f"{os.getpid()}\n{postgres.data_dir}\n")
    postgres.start()
    try:
        assert postgres.psql("select 1") == "1"
        assert postgres.child is not None
        # The same data directory while that server runs: refused, and its lock file is left alone.
        second = EmbeddedPostgres(tmp_path / "postgres", fast_and_unsafe=True)
        with pytest.raises(EmbeddedError, match=rf"in use by postgres pid {postgres.child.pid}"):
            second.start()
        assert postgres.lock_file.read_text().split("\n", 1)[0] == str(postgres.child.pid)
    finally:
        postgres.stop()


def test_a_stale_runtime_file_is_ignored(tmp_path: Path) -> None:
    dead = psutil.Popen(["true"])
    dead_started = dead.create_time()
    dead.wait()
    runtime.write(tmp_path, runtime.Runtime(pid=dead.pid, process_started=dead_started,
                                            postgres_port=5432))
    assert runtime.read(tmp_path) is not None and runtime.read_live(tmp_path) is None
    # A live PID that started at another time is another process that reused the PID.
    runtime.write(tmp_path, runtime.Runtime(pid=os.getpid(), process_started=1.0, postgres_port=5432))
    assert runtime.read_live(tmp_path) is None
    runtime.write(tmp_path, runtime.for_this_process(postgres_port=5432))
    assert runtime.read_live(tmp_path) == runtime.for_this_process(postgres_port=5432)
    runtime.remove(tmp_path)
    assert not runtime.path(tmp_path).exists()


async def test_a_child_that_keeps_dying_is_given_up_and_liveness_fails(tmp_path: Path) -> None:
    pdp = EmbeddedCerbos(PROJECT_ROOT / "policies", tmp_path)
    pdp.start()
    supervisor = Supervisor({"cerbos": pdp}, backoff_initial=0.05, max_restarts=1, window=60)
    supervisor.start()
    app = Starlette(routes=[Route("/health/live", health.live)])
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    before = REGISTRY.get_sample_value("cityos_embedded_restarts_total", {"service": "cerbos"}) or 0.0
    try:
        assert (await client.get("/health/live")).json() == {"status": "ok"}
        assert pdp.child is not None and pdp.child.pid is not None
        first = pdp.child.pid
        os.kill(first, signal.SIGKILL)
        await eventually(lambda: pdp.child is not None and pdp.child.pid != first
                         and supervisor.states()["cerbos"] is State.RUNNING)
        assert supervisor.states() == {"cerbos": State.RUNNING} and pdp.child.pid != first
        assert reaped(first)
        second = pdp.child.pid
        assert second is not None
        os.kill(second, signal.SIGKILL)  # the one restart allowed in the window is used: give up
        await eventually(lambda: supervisor.states()["cerbos"] is State.FAILED)
        assert supervisor.states() == {"cerbos": State.FAILED}
        assert reaped(second)
        response = (await client.get("/health/live"))
        assert response.status_code == 503
        assert response.json() == {"status": "failed", "problems": [
            "embedded cerbos is down: given up after 1 restart attempt(s) within 60s"]}
        after = REGISTRY.get_sample_value("cityos_embedded_restarts_total", {"service": "cerbos"})
        assert after == before + 1
        assert REGISTRY.get_sample_value("cityos_embedded_up", {"service": "cerbos"}) == 0.0
    finally:
        supervisor.stop()
        pdp.stop()
    assert (await client.get("/health/live")).json() == {"status": "ok"}, "no supervisor, nothing to report"
    await client.aclose()
