"""Session fixtures: real Postgres, Cerbos and Redis; the app served by uvicorn; a client speaking HTTP."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from cityos.app import create_app
from cityos.config import Settings
from cityos.db import migrate
from cityos.db.engines import create_owner_engine
from cityos.domain.tenancy import service as tenancy
from cityos.embedded.process import free_port
from cityos.seed import seed_reference_data
from cityos.services import Services
from tests import infrastructure
from tests.fakes.fleetbase import FakeFleetbase
from tests.fakes.keycloak import FakeKeycloak
from tests.fakes.payload import FakePayload
from tests.fakes.stripe import FakeStripe


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cityos")


@pytest.fixture(scope="session")
def postgres_admin_url(work_dir: Path) -> Iterator[str]:
    if url := os.environ.get("TEST_DATABASE_URL"):
        yield url
        return
    with infrastructure.postgres_server(work_dir / "postgres") as url:
        yield url


@pytest.fixture(scope="session")
def database_url(postgres_admin_url: str) -> str:
    url = infrastructure.create_database(postgres_admin_url)
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="session")
def cerbos(work_dir: Path) -> Iterator[Any]:
    with infrastructure.cerbos_server(work_dir / "cerbos") as pdp:
        yield pdp


@pytest.fixture(scope="session")
def redis_url(work_dir: Path) -> Iterator[str]:
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    (work_dir / "redis").mkdir(exist_ok=True)
    with infrastructure.redis_server(work_dir / "redis") as url:
        yield url


async def serve_asgi(app: Any, **options: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on",
                            ws="cityos.http.frames:FrameProtocol", **options)
    uvicorn_server = uvicorn.Server(config)
    task = asyncio.create_task(uvicorn_server.serve())
    while not uvicorn_server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return uvicorn_server, task, port


@asynccontextmanager
async def served(fake: Any) -> AsyncIterator[Any]:
    """A fake external service (anything with `app()` and `base_url`) served by uvicorn on a free port."""
    uvicorn_server, task, port = await serve_asgi(fake.app())
    fake.base_url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        uvicorn_server.should_exit = True
        await task


@pytest.fixture(scope="session")
async def keycloak() -> AsyncIterator[FakeKeycloak]:
    async with served(FakeKeycloak()) as fake:
        yield fake


STRIPE_KEY = "sk_test_cityos_" + "k" * 24
STRIPE_WEBHOOK_SECRET = "whsec_cityos_" + "w" * 24


@pytest.fixture(scope="session")
async def fake_stripe() -> AsyncIterator[FakeStripe]:
    async with served(FakeStripe(STRIPE_KEY, STRIPE_WEBHOOK_SECRET)) as fake:
        yield fake


FLEETBASE_KEY = "flb_test_" + "f" * 32
FLEETBASE_SECRET = "fleetbase-webhook-secret-" + "s" * 16


@pytest.fixture(scope="session")
async def fake_fleetbase() -> AsyncIterator[FakeFleetbase]:
    async with served(FakeFleetbase(FLEETBASE_KEY, FLEETBASE_SECRET)) as fake:
        yield fake


PAYLOAD_KEY = "payload-api-key-" + "p" * 24
PAYLOAD_SECRET = "payload-webhook-secret-" + "q" * 16


@pytest.fixture(scope="session")
async def fake_payload() -> AsyncIterator[FakePayload]:
    async with served(FakePayload(PAYLOAD_KEY, PAYLOAD_SECRET)) as fake:
        yield fake


@pytest.fixture(scope="session")
def settings(database_url: str, cerbos: Any, redis_url: str, work_dir: Path, keycloak: FakeKeycloak,
             fake_stripe: FakeStripe, fake_fleetbase: FakeFleetbase, fake_payload: FakePayload) -> Settings:
    return Settings(DATABASE_URL=database_url, CERBOS_URL=cerbos.url, REDIS_URL=redis_url,
                    CITYOS_DATA_DIR=work_dir / "data", CITYOS_MAX_BODY_BYTES=64 * 1024,
                    KEYCLOAK_URL=keycloak.base_url, KEYCLOAK_CLIENT_SECRET="x" * 32,
                    STRIPE_API_KEY=STRIPE_KEY, STRIPE_WEBHOOK_SECRET=STRIPE_WEBHOOK_SECRET,
                    CITYOS_STRIPE_API_BASE=fake_stripe.base_url, STRIPE_CONNECT_CLIENT_ID="ca_cityos_test",
                    FLEETBASE_URL=fake_fleetbase.base_url, FLEETBASE_API_KEY=FLEETBASE_KEY,
                    CITYOS_FLEETBASE_WEBHOOK_SECRET=FLEETBASE_SECRET,
                    PAYLOAD_URL=fake_payload.base_url, PAYLOAD_API_KEY=PAYLOAD_KEY, PAYLOAD_SECRET=PAYLOAD_SECRET,
                    CITYOS_RATE_LIMITS=False,  # tests/integration/test_rate_limits.py turns them on
                    CITYOS_SCHEDULER=False,  # tests/integration/test_scheduler.py drives its own schedulers
                    CITYOS_SYNC_SETTLE_SECONDS=0)  # test_sync_horizon.py checks the horizon itself


@pytest.fixture(scope="session")
async def owner_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_owner_engine(database_url)
    async with engine.begin() as connection:
        await seed_reference_data(connection)
    yield engine
    await engine.dispose()


class StatementCounter:
    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, *_: Any) -> None:
        self.count += 1


@dataclass
class Server:
    url: str
    services: Services
    statements: StatementCounter


@asynccontextmanager
async def app_instance(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """Another API process's worth (own services, own caches) on `settings`, and a client of it."""
    services = Services.start(settings)
    uvicorn_server, task, port = await serve_asgi(create_app(settings, services))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client, services
    finally:
        uvicorn_server.should_exit = True
        await task
        await services.close()


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second API (own services) on `settings`, for tests of settings other than the session's."""
    async with app_instance(settings) as (client, _):
        yield client


@pytest.fixture(scope="session")
async def server(settings: Settings, owner_engine: AsyncEngine) -> AsyncIterator[Server]:
    services = Services.start(settings)
    counter = StatementCounter(services.app_engine)
    uvicorn_server, task, port = await serve_asgi(create_app(settings, services))
    yield Server(f"http://127.0.0.1:{port}", services, counter)
    uvicorn_server.should_exit = True
    await task
    await services.close()


@pytest.fixture(scope="session")
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


@dataclass
class TenantWorld:
    """A tenant of its own for one test: its store, domain and publishable key."""

    tenant_id: uuid.UUID
    slug: str
    store_id: uuid.UUID
    domain: str
    key: str


async def make_tenant(engine: AsyncEngine, *, stores: int = 1, slug: str | None = None) -> TenantWorld:
    slug = slug or f"t-{uuid.uuid4().hex[:12]}"
    async with engine.begin() as connection:
        tenant = await tenancy.create_tenant(connection, slug=slug, name=f"Tenant {slug}")
        store_ids = []
        for index in range(stores):
            store = await tenancy.create_store(connection, tenant_id=tenant.id, handle=f"store-{index}",
                                               name=f"Store {index} of {slug}")
            store_ids.append(store.id)
        domain = f"{slug}.shop.test"
        await tenancy.add_store_domain(connection, tenant_id=tenant.id, store_id=store_ids[0], domain=domain,
                                       is_primary=True)
        _, key = await tenancy.create_publishable_key(connection, tenant_id=tenant.id, store_id=store_ids[0],
                                                      title="storefront")
    return TenantWorld(tenant.id, slug, store_ids[0], domain, key)


@pytest.fixture
async def world(owner_engine: AsyncEngine) -> TenantWorld:
    return await make_tenant(owner_engine)


@pytest.fixture
async def other_world(owner_engine: AsyncEngine) -> TenantWorld:
    return await make_tenant(owner_engine)


class GraphQLClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(self, query: str, variables: dict[str, Any] | None = None, *,
                       key: str | None = None, token: str | None = None,
                       headers: dict[str, str] | None = None) -> dict[str, Any]:
        all_headers = dict(headers or {})
        if key:
            all_headers["x-publishable-api-key"] = key
        if token:
            all_headers["authorization"] = f"Bearer {token}"
        response = await self.http.post("/graphql", json={"query": query, "variables": variables or {}},
                                        headers=all_headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in body.get("errors", [])]


class Tokens:
    """Keycloak-shaped access tokens from the fake realm, for any role of any tenant."""

    def __init__(self, keycloak: FakeKeycloak) -> None:
        self.keycloak = keycloak

    def __call__(self, role: str, world: TenantWorld | None = None, *, stores: list[str] | None = None,
                 vendor: str | None = None, company: str | None = None, subject: str | None = None,
                 email: str | None = None, email_verified: bool = True) -> str:
        return self.keycloak.token(roles=[role], tenant=world.slug if world else None, stores=stores,
                                   vendor=vendor, company=company, subject=subject, email=email,
                                   email_verified=email_verified)


@pytest.fixture
def tokens(keycloak: FakeKeycloak) -> Tokens:
    return Tokens(keycloak)
