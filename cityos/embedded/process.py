"""A supervised child process: started in its own process group, tied to our lifetime, stopped in order."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)


class EmbeddedError(RuntimeError):
    """An embedded service cannot start; the message says why and what to do (the CLI prints it as is)."""

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM us when the parent dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: the parent's orderly stop still applies
        pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ChildProcess:
    """One long-running child. Its own process group keeps a terminal's Ctrl-C from reaching it before we
    stop it in order; PR_SET_PDEATHSIG stops it if we are killed outright."""

    def __init__(self, name: str, argv: Sequence[str], *, log_path: Path, user: str | None = None,
                 env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.user = user
        self.env = env
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def exit_code(self) -> int | None:
        """None while it runs; once it has exited, its code (this also reaps it, so no zombie stays)."""
        return self.process.poll() if self.process is not None else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                user=self.user, env=self.env, cwd=self.cwd, process_group=0, preexec_fn=_die_with_parent,
            )
        log.info("started %s (pid %s)", self.name, self.process.pid)

    def wait_ready(self, is_ready: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise EmbeddedError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}:\n"
                                   + self.tail_log())
            if is_ready():
                return
            time.sleep(0.1)
        self.stop()
        raise EmbeddedError(f"{self.name} was not ready after {timeout:.0f}s; see {self.log_path}:\n" + self.tail_log())

    def tail_log(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, stop_signal: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, stop_signal)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop in %.0fs; killing it", self.name, timeout)
            process.kill()
            process.wait()
        log.info("stopped %s", self.name)


def tcp_port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0
