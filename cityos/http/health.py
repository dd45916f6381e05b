"""/health/live (the process can serve) and /health/ready (its dependencies answer).

Liveness is what only a restart of this process can fix. An event loop that is stalled cannot answer at all,
so the probe's timeout reports it; what the loop can report is an embedded child (Postgres, Cerbos) that the
supervisor has given up restarting. A child being restarted is a readiness matter: /health/ready names it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from cityos.embedded import supervisor
from cityos.services import Services

CHECK_TIMEOUT_SECONDS = 2.0


async def live(_request: Request) -> JSONResponse:
    embedded = supervisor.current()
    problems = embedded.liveness_problems() if embedded is not None else []
    if problems:
        return JSONResponse({"status": "failed", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ok"})


async def _postgres(services: Services) -> None:
    async with services.app_engine.connect() as connection:
        await connection.execute(text("select 1"))


async def _cerbos(services: Services) -> None:
    await services.pdp.server_info()


async def _redis(services: Services) -> None:
    if not await services.broker.ping():
        raise RuntimeError("redis did not answer PING")


async def _check(name: str, probe: Callable[[Services], Awaitable[None]], services: Services) -> tuple[str, str]:
    try:
        await asyncio.wait_for(probe(services), CHECK_TIMEOUT_SECONDS)
    except Exception as error:  # any failure makes the dependency not ready
        return name, f"failed: {type(error).__name__}"
    return name, "ok"


async def ready(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    probes: dict[str, Callable[[Services], Awaitable[None]]] = {"postgres": _postgres, "cerbos": _cerbos}
    if services.settings.REDIS_URL:
        probes["redis"] = _redis
    results = dict(await asyncio.gather(*(_check(name, probe, services) for name, probe in probes.items())))
    embedded = supervisor.current()
    for name, state in (embedded.states() if embedded is not None else {}).items():
        if state != supervisor.State.RUNNING:  # a probe may reach it between restarts; it is still not ready
            results[name] = f"failed: embedded {name} is {state.value}"
    failed = sorted(name for name, result in results.items() if result != "ok")
    body = {"status": "ok" if not failed else "unavailable", "checks": results, "failed": failed}
    return JSONResponse(body, status_code=200 if not failed else 503)
