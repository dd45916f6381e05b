"""Supervision of the embedded children of `cityos serve`: a child that exits (crash, OOM kill, `kill -9`) is
reaped at once (no zombie, and Postgres' postmaster.pid no longer names a live PID) and restarted on the same
ports with exponential backoff, so the app's connection pool and gRPC channel reconnect by themselves.

Backoff: 0.5 s before the first restart, doubling up to 10 s for a child that keeps dying; it is back to 0.5 s
once a child has stayed up for a minute. After 10 restart attempts within 10 minutes the supervisor gives up on
that child: it stays down, /health/ready reports it, and /health/live fails so that an orchestrator restarts the
whole process (the one thing that can still help).

The supervisor is a thread, not an asyncio task: it keeps working while the event loop is busy or stalled, and
its blocking waits (a child's readiness) never stall the loop. A restarted child's PR_SET_PDEATHSIG is tied to
this thread (Linux signals the child when the *thread* that forked it ends), which is why the thread lives until
the children are stopped.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from cityos.embedded.process import ChildProcess
from cityos.observability.metrics import EMBEDDED_RESTARTS, EMBEDDED_UP

log = logging.getLogger(__name__)

BACKOFF_INITIAL_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0
MAX_RESTARTS = 10
RESTART_WINDOW_SECONDS = 600.0
STABLE_AFTER_SECONDS = 60.0
POLL_SECONDS = 0.2


class Service(Protocol):
    """EmbeddedPostgres and EmbeddedCerbos: a started child, restartable in place."""

    @property
    def child(self) -> ChildProcess | None: ...

    def restart(self) -> None: ...

    def stop(self) -> None: ...


class State(enum.StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"
    FAILED = "failed"  # restarts exhausted; stays down


@dataclass
class _Watch:
    name: str
    service: Service
    backoff: float
    state: State = State.RUNNING
    up_since: float = field(default_factory=time.monotonic)
    down_since: float = 0.0
    next_attempt: float = 0.0
    attempts: deque[float] = field(default_factory=deque)


class Supervisor:
    def __init__(self, services: Mapping[str, Service], *, on_restart: Callable[[], None] | None = None,
                 backoff_initial: float = BACKOFF_INITIAL_SECONDS, backoff_max: float = BACKOFF_MAX_SECONDS,
                 max_restarts: int = MAX_RESTARTS, window: float = RESTART_WINDOW_SECONDS,
                 stable_after: float = STABLE_AFTER_SECONDS, poll_interval: float = POLL_SECONDS) -> None:
        self._watches = [_Watch(name, service, backoff_initial) for name, service in services.items()]
        self._on_restart = on_restart
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._max_restarts = max_restarts
        self._window = window
        self._stable_after = stable_after
        self._poll_interval = poll_interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="embedded-supervisor", daemon=True)

    def start(self) -> None:
        global _current
        for watch in self._watches:
            EMBEDDED_UP.labels(watch.name).set(1)
        self._thread.start()
        _current = self

    def stop(self) -> None:
        """Stop supervising (before the children are stopped, or they would be restarted); waits for a restart
        in progress to finish."""
        global _current
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        if _current is self:
            _current = None

    def states(self) -> dict[str, State]:
        return {watch.name: watch.state for watch in self._watches}

    def liveness_problems(self) -> list[str]:
        """Why this process can no longer serve and will not recover by itself (empty when it can)."""
        problems = [f"embedded {watch.name} is down: given up after {self._max_restarts} restart attempt(s) "
                    f"within {self._window:.0f}s"
                    for watch in self._watches if watch.state is State.FAILED]
        if not self._thread.is_alive() and not self._stopping.is_set():
            problems.append("the embedded services' supervisor thread has ended")
        return problems

    def _run(self) -> None:
        while not self._stopping.wait(self._poll_interval):
            for watch in self._watches:
                if self._stopping.is_set():
                    return
                try:
                    self._check(watch)
                except Exception:  # keep supervising the others; the next poll tries again
                    log.exception("supervising embedded %s failed", watch.name)

    def _check(self, watch: _Watch) -> None:
        now = time.monotonic()
        if watch.state is State.RUNNING:
            child = watch.service.child
            code = child.exit_code() if child is not None else None  # polls, which reaps an exited child
            if code is None:
                if now - watch.up_since >= self._stable_after:
                    watch.backoff = self._backoff_initial
                return
            watch.state, watch.down_since, watch.next_attempt = State.RESTARTING, now, now + watch.backoff
            EMBEDDED_UP.labels(watch.name).set(0)
            log.error("embedded %s (pid %s) exited with %s; restarting it in %.1fs", watch.name,
                      child.pid if child else "?", _describe(code), watch.backoff)
            return
        if watch.state is not State.RESTARTING or now < watch.next_attempt:
            return
        while watch.attempts and now - watch.attempts[0] > self._window:
            watch.attempts.popleft()
        if len(watch.attempts) >= self._max_restarts:
            watch.state = State.FAILED
            log.critical("giving up on embedded %s after %d restart attempts in %.0fs; /health/live now fails",
                         watch.name, len(watch.attempts), self._window)
            return
        watch.attempts.append(now)
        EMBEDDED_RESTARTS.labels(watch.name).inc()
        try:
            watch.service.restart()
        except Exception as error:
            self._stop_quietly(watch)
            watch.backoff = min(watch.backoff * 2, self._backoff_max)
            watch.next_attempt = time.monotonic() + watch.backoff
            log.warning("restarting embedded %s failed (%s); next attempt in %.1fs", watch.name,
                        str(error).split("\n", 1)[0], watch.backoff)
            return
        watch.state, watch.up_since = State.RUNNING, time.monotonic()
        watch.backoff = min(watch.backoff * 2, self._backoff_max)  # back to the initial value once stable
        EMBEDDED_UP.labels(watch.name).set(1)
        child = watch.service.child
        log.warning("restarted embedded %s (pid %s), %.1fs after it exited", watch.name,
                    child.pid if child else "?", watch.up_since - watch.down_since)
        if self._on_restart is not None:
            self._on_restart()

    @staticmethod
    def _stop_quietly(watch: _Watch) -> None:
        """A restart that failed half-way (e.g. after the server started) must not leave a child running."""
        try:
            watch.service.stop()
        except Exception:
            log.exception("stopping embedded %s after a failed restart failed", watch.name)


def _describe(code: int) -> str:
    if code < 0:
        import signal

        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


_current: Supervisor | None = None


def current() -> Supervisor | None:
    """The supervisor of this process's embedded children (`cityos serve`), if any."""
    return _current
