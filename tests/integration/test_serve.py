"""`cityos serve` on its embedded defaults, as `make run` starts it: serves, stops every child, restarts on the
same data."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from cityos.embedded.process import free_port
from tests.infrastructure import PROJECT_ROOT


def start(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items()
           if key not in {"DATABASE_URL", "CERBOS_URL", "REDIS_URL", "CITYOS_ENV"}}
    env.update(CITYOS_DATA_DIR=str(data_dir), CITYOS_PORT=str(port), LOG_LEVEL="warning")
    return subprocess.Popen([sys.executable, "-m", "cityos", "serve"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


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


def _alive(pid: int) -> bool:
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
    while (alive := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, (alive, output, remaining)

    # A second start reuses the data: the same demo key, and seeding adds nothing.
    process = start(tmp_path, port)
    second = wait_ready(process, port)
    assert key.group(1) in second
    stop(process)
