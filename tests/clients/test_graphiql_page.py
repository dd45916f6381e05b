"""GraphiQL's page and assets over HTTP: same-origin only, hashed immutable asset URLs, gzip, and the demo key
prefilled in development but never in production."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import orjson
import pytest

from cityos.config import Environment, Settings
from tests.conftest import Server, TenantWorld, app_client

HTML = {"accept": "text/html,application/xhtml+xml"}


@pytest.fixture
def demo_key(settings: Settings, world: TenantWorld) -> Iterator[str]:
    path = settings.CITYOS_DATA_DIR / "demo-publishable-key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(world.key + "\n")
    yield world.key
    path.unlink()


def page_config(html: str) -> dict[str, str]:
    found = re.search(r'<script type="application/json" id="cityos-graphiql-config">(.*?)</script>', html, re.S)
    assert found, html
    config: dict[str, str] = orjson.loads(found.group(1))
    return config


async def test_the_page_references_only_same_origin_assets_and_has_no_inline_script(
        http: httpx.AsyncClient, demo_key: str) -> None:
    response = await http.get("/graphql", headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert "Loading…" in html
    assert not re.search(r"https?://|//[a-z]", html), "the page names another host"
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert len(scripts) == 6
    for attributes, body in scripts:  # code only from files; the one data block is JSON, never executed
        data_block = attributes == ' type="application/json" id="cityos-graphiql-config"'
        assert ("src=" in attributes and not body) or data_block, attributes
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assets = [url for url in urls if url.startswith("/graphiql/assets/")]
    assert {url.rsplit("/", 1)[1] for url in assets} == {"react.js", "react-dom.js", "graphiql.js", "graphql-ws.js",
                                                          "boot.js", "graphiql.css", "page.css"}
    assert set(urls) - set(assets) == {"data:,"}  # the empty favicon, so the browser asks for none
    config = page_config(html)
    assert config["endpoint"] == "/graphql"
    assert orjson.loads(config["headers"]) == {"x-publishable-api-key": demo_key}
    assert "currentStore" in config["query"]


async def test_assets_are_immutable_at_their_digest_and_gzipped(http: httpx.AsyncClient) -> None:
    html = (await http.get("/graphql", headers=HTML)).text
    graphiql_js = next(url for url in re.findall(r'src="([^"]+)"', html) if url.endswith("/graphiql.js"))
    plain = await http.get(graphiql_js, headers={"accept-encoding": "identity"})
    assert plain.status_code == 200
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert plain.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "content-encoding" not in plain.headers
    assert b"window.GraphiQL" in plain.content
    zipped = await http.get(graphiql_js, headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == plain.content  # httpx decodes
    assert int(zipped.headers["content-length"]) < len(plain.content) / 3
    css = next(url for url in re.findall(r'href="([^"]+)"', html) if url.endswith("/graphiql.css"))
    assert (await http.get(css)).headers["content-type"] == "text/css; charset=utf-8"
    # another digest (an old or forged URL) is not served under the immutable policy
    digest = graphiql_js.split("/")[3]
    stale = await http.get(graphiql_js.replace(digest, "0" * len(digest)))
    assert stale.status_code == 404
    assert "immutable" not in stale.headers.get("cache-control", "")
    assert (await http.get(graphiql_js.replace("graphiql.js", "package.json"))).status_code == 404


async def test_api_clients_get_no_page(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"accept": "application/json"})
    assert not response.headers.get("content-type", "").startswith("text/html")
    assert response.status_code == 400, response.text  # queries via GET are off; no page for API clients


async def test_production_never_prefills_the_demo_key(server: Server, settings: Settings, demo_key: str) -> None:
    """Even where an operator turns GraphiQL on in production (it is off there by default)."""
    production = settings.model_copy(update={"CITYOS_ENV": Environment.PRODUCTION, "CITYOS_DEV_TOKENS": False,
                                             "CITYOS_GRAPHIQL": True})
    async with app_client(production) as client:
        response = await client.get("/graphql", headers=HTML)
    assert response.status_code == 200
    assert demo_key not in response.text
    assert page_config(response.text)["headers"] == ""
