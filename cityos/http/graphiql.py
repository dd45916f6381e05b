"""GraphiQL served by the API itself: pinned npm assets from `web/graphiql/` (`npm ci` by `make run`/`make test`),
no CDN, so it works offline.

GET /graphql from a browser gets `page()`: HTML that references only same-origin URLs and holds no inline script
(the boot code is `web/graphiql/boot.js`; settings travel in a JSON data block, which is never executed). Scripts
and styles are served at `/graphiql/assets/<content digest>/<name>` with a year-long immutable cache: a new
version of a file has a new URL. Subscriptions started in GraphiQL use the graphql-ws client over the same
origin, with the headers editor's values as `connection_init` payload.

In development the headers editor starts with the demo store's `x-publishable-api-key`, read from
`<CITYOS_DATA_DIR>/demo-publishable-key` (written by `cityos seed`); in production that file is never read.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
from dataclasses import dataclass
from html import escape
from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from cityos.config import Settings

WEB_DIR = Path(__file__).resolve().parents[2] / "web" / "graphiql"
ASSETS_PATH = "/graphiql/assets"
DEMO_KEY_FILE = "demo-publishable-key"
PUBLISHABLE_KEY_HEADER = "x-publishable-api-key"
IMMUTABLE = "public, max-age=31536000, immutable"

# name served → file under web/graphiql; scripts load in this order.
SCRIPTS = {
    "react.js": "node_modules/react/umd/react.production.min.js",
    "react-dom.js": "node_modules/react-dom/umd/react-dom.production.min.js",
    "graphiql.js": "node_modules/graphiql/graphiql.min.js",
    "graphql-ws.js": "node_modules/graphql-ws/umd/graphql-ws.min.js",
    "boot.js": "boot.js",
}
STYLES = {
    "graphiql.css": "node_modules/graphiql/graphiql.min.css",
    "page.css": "page.css",
}
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

DEFAULT_QUERY = """# CityOS Commerce. Storefront calls need the x-publishable-api-key header (Headers, below);
# admin calls an Authorization: Bearer <token> header (`cityos token --role tenant_admin --tenant demo`).
# Subscriptions stream over WebSocket with the same headers.
{
  currentStore {
    name
    domains { nodes { domain } }
    tenant { slug regions { nodes { name } } }
  }
}
"""


@dataclass(frozen=True)
class Asset:
    name: str
    digest: str
    media_type: str
    body: bytes
    gzipped: bytes

    @property
    def url(self) -> str:
        return f"{ASSETS_PATH}/{self.digest}/{self.name}"


class MissingAssets(RuntimeError):
    pass


def load_assets(root: Path = WEB_DIR) -> dict[str, Asset]:
    """Read and gzip every asset once (the GraphiQL bundle is 3.5 MB, 0.7 MB gzipped)."""
    missing = [path for path in (*SCRIPTS.values(), *STYLES.values()) if not (root / path).is_file()]
    if missing:
        raise MissingAssets(f"GraphiQL assets are missing under {root} ({', '.join(missing)}): "
                            "run `make run` (it runs npm ci in web/graphiql)")
    assets = {}
    for name, path in {**SCRIPTS, **STYLES}.items():
        body = (root / path).read_bytes()
        assets[name] = Asset(name, hashlib.sha256(body).hexdigest()[:20], MEDIA_TYPES[Path(name).suffix], body,
                             gzip.compress(body, compresslevel=6, mtime=0))
    return assets


class GraphiQL:
    """The page and its assets; the assets are loaded on first use (in a thread) and kept for the process."""

    def __init__(self, root: Path = WEB_DIR) -> None:
        self.root = root
        self._assets: dict[str, Asset] | None = None
        self._lock = asyncio.Lock()

    async def assets(self) -> dict[str, Asset]:
        if self._assets is None:
            async with self._lock:
                if self._assets is None:
                    self._assets = await asyncio.to_thread(load_assets, self.root)
        return self._assets

    async def page(self, request: Request) -> Response:
        try:
            assets = await self.assets()
        except MissingAssets as error:
            return PlainTextResponse(str(error), status_code=503)
        settings: Settings = request.app.state.services.settings
        config = {"endpoint": request.url.path, "query": DEFAULT_QUERY, "headers": default_headers(settings)}
        # a JSON data block: `<` escaped so no value can close the element
        data = orjson.dumps(config).decode().replace("<", "\\u003c")
        styles = "\n".join(f'<link rel="stylesheet" href="{escape(assets[name].url)}">' for name in STYLES)
        scripts = "\n".join(f'<script src="{escape(assets[name].url)}"></script>' for name in SCRIPTS)
        html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CityOS Commerce · GraphiQL</title>
<link rel="icon" href="data:,">
{styles}
<script type="application/json" id="cityos-graphiql-config">{data}</script>
</head>
<body>
<div id="graphiql">Loading…</div>
{scripts}
</body>
</html>
"""
        return HTMLResponse(html, headers={"cache-control": "no-store", "x-content-type-options": "nosniff"})

    async def asset(self, request: Request) -> Response:
        if not request.app.state.services.settings.graphiql_enabled:
            return PlainTextResponse("not found", status_code=404)
        try:
            assets = await self.assets()
        except MissingAssets as error:
            return PlainTextResponse(str(error), status_code=503)
        asset = assets.get(request.path_params["name"])
        if asset is None or asset.digest != request.path_params["digest"]:
            return PlainTextResponse("not found", status_code=404)
        headers = {"cache-control": IMMUTABLE, "x-content-type-options": "nosniff", "vary": "accept-encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(asset.gzipped, media_type=asset.media_type, headers={**headers, "content-encoding": "gzip"})
        return Response(asset.body, media_type=asset.media_type, headers=headers)


def default_headers(settings: Settings) -> str:
    """The headers editor's first content: the demo store's publishable key in development, nothing in production."""
    if settings.is_production:
        return ""
    try:
        key = (settings.CITYOS_DATA_DIR / DEMO_KEY_FILE).read_text().strip()
    except OSError:
        return ""
    return orjson.dumps({PUBLISHABLE_KEY_HEADER: key}, option=orjson.OPT_INDENT_2).decode() if key else ""
