"""The storefront load mix: 1,000 shoppers browsing categories, listing and searching products, opening product
pages and reading their carts, against `cityos serve` with as many uvicorn workers as cores.

    .venv/bin/python -m bench.mix [--users 1000 --duration 30 --think-ms 1000-3000]

The load generator is wrk (C, Debian) driven by a Lua script (no locust in the image): one connection per
shopper; each request picks an operation by weight and a random product, category, search term or cart of the
benchmark store; between requests a shopper thinks `--think-ms` (uniform; 1-3 s, a mean of 2 s, offers the
deployment plan's 500 req/s from 1,000 shoppers). A second run without think time (`saturation`) shows what the
server does at full load. Errors are HTTP errors, socket errors and GraphQL `errors` in a 200 answer.

`bench.run` (make bench) calls `mix()` on its own dataset; run alone, this module starts its own Postgres,
Cerbos and dataset like `bench.compiled`. Redis is started here: more than one worker needs it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from bench import dataset
from bench.run import (
    OURS_PORT,
    ROOT,
    add_dataset_arguments,
    global_id,
    pick_ids,
    start_infrastructure,
    stop,
    wait_http,
)

OPERATIONS = ROOT / "graphql" / "operations" / "storefront"
# (name, weight, document): the storefront's own operation documents
MIX = (("categories", 15, "Categories"), ("listing", 30, "Products"), ("search", 15, "Products"),
       ("product", 30, "ProductByHandle"), ("cart", 10, "Cart"))
THRESHOLDS = {"rps": 500.0, "p95_ms": 200.0, "error_rate": 0.001}  # deployment-plan.md
BODIES_PER_KIND = 400
CARTS = 200


def document(name: str) -> str:
    return (OPERATIONS / f"{name}.graphql").read_text()


async def shop_data(database_url: str, store_id: str) -> dict[str, list[Any]]:
    """Handles, categories, search terms and variants of the benchmark store."""
    connection = await asyncpg.connect(database_url)
    try:
        products = await connection.fetch("select handle, title from product where store_id = $1 "
                                          "order by random() limit $2", store_id, BODIES_PER_KIND)
        categories = await connection.fetch("select id from category where store_id = $1", store_id)
        variants = await connection.fetch("select v.id from variant v join product p on p.id = v.product_id "
                                          "where p.store_id = $1 order by random() limit $2", store_id, CARTS)
        return {"handles": [row["handle"] for row in products],
                "terms": [row["title"].split()[-1] for row in products],
                "categories": [str(row["id"]) for row in categories],
                "variants": [str(row["id"]) for row in variants]}
    finally:
        await connection.close()


async def ensure_region(database_url: str, tenant_id: str) -> None:
    """The benchmark tenant sells in USD (the demo region): carts need a region."""
    from cityos.db.engines import create_owner_engine
    from cityos.seed import seed_region

    engine = create_owner_engine(database_url)
    try:
        async with engine.begin() as connection:
            await seed_region(connection, uuid.UUID(tenant_id))
    finally:
        await engine.dispose()


def create_carts(url: str, key: str, variants: list[str]) -> tuple[list[str], int]:
    """Carts of guest shoppers, each with one line when the variant can be added (through the API, as a
    storefront makes them); the carts and how many have a line."""
    headers = {"x-publishable-api-key": key}
    carts, with_lines = [], 0
    with httpx.Client(timeout=30) as client:
        for variant in variants:
            created = client.post(url, headers=headers, json={"query": document("CreateCart"),
                                                              "variables": {"input": {}}}).json()
            if not (created.get("data") or {}).get("createCart"):
                raise RuntimeError(f"createCart failed: {created}")
            cart_id = created["data"]["createCart"]["id"]
            added = client.post(url, headers=headers, json={"query": document("AddCartLine"), "variables": {
                "cartId": cart_id, "variantId": global_id("Variant", variant), "quantity": 1}}).json()
            with_lines += "errors" not in added
            carts.append(cart_id)
    return carts, with_lines


def bodies(data: dict[str, list[Any]], carts: list[str], store_global_id: str) -> dict[str, list[bytes]]:
    def body(name: str, variables: dict[str, Any]) -> bytes:
        return orjson.dumps({"query": document(name), "variables": variables})

    sorts = ("NEWEST", "TITLE")
    categories = data["categories"]
    return {
        "categories": [body("Categories", {"storeId": store_global_id, "rootsOnly": index % 2 == 0})
                       for index in range(2)],
        "listing": [body("Products", {"filter": {"categoryId": global_id("Category", categories[i % len(categories)])},
                                      "sort": sorts[i % 2], "first": 24}) for i in range(BODIES_PER_KIND)],
        "search": [body("Products", {"filter": {"search": term}, "first": 24}) for term in data["terms"]],
        "product": [body("ProductByHandle", {"handle": handle}) for handle in data["handles"]],
        "cart": [body("Cart", {"id": cart}) for cart in carts],
    }


def lua_script(requests: dict[str, list[bytes]], key: str, think: tuple[int, int],
               only: str | None = None) -> str:
    tables = []
    for name, weight, _ in MIX:
        if only is not None and name != only:
            continue
        entries = ",\n".join(f"[==[{item.decode()}]==]" for item in requests[name])
        tables.append(f'{{name = "{name}", weight = {weight}, bodies = {{\n{entries}\n}}}}')
    return f'''
local kinds = {{ {",".join(tables)} }}
local total = 0
for _, kind in ipairs(kinds) do total = total + kind.weight end
local headers = {{["Content-Type"] = "application/json", ["x-publishable-api-key"] = "{key}"}}
local threads = {{}}
local think_min, think_max = {think[0]}, {think[1]}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + id)
  graphql_errors = 0
  first = true
end

function request()
  local r = math.random() * total
  for _, kind in ipairs(kinds) do
    r = r - kind.weight
    if r <= 0 then
      return wrk.format("POST", "/graphql", headers, kind.bodies[math.random(#kind.bodies)])
    end
  end
  return wrk.format("POST", "/graphql", headers, kinds[1].bodies[1])
end

function delay()
  if think_max <= 0 then return 0 end
  if first then first = false; return math.random(0, think_max) end  -- spread the shoppers' starts
  return math.random(think_min, think_max)
end

function response(status, headers, body)
  if status == 200 and string.find(body, '"errors"', 1, true) then graphql_errors = graphql_errors + 1 end
end

function done(summary, latency, requests)
  local graphql = 0
  for _, thread in ipairs(threads) do graphql = graphql + thread:get("graphql_errors") end
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d %.3f %.3f %.3f\\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout, graphql, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
'''


def load(url: str, script: str, users: int, duration: int, threads: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        output = subprocess.run(["wrk", f"-t{threads}", f"-c{users}", f"-d{duration}s", "--timeout", "10s",
                                 "-s", handle.name, url], capture_output=True, text=True, check=False).stdout
    finally:
        os.unlink(handle.name)
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", output)
    if match is None:
        raise RuntimeError(output)
    requests, micros, status, socket, graphql = (int(match.group(i)) for i in range(1, 6))
    errors = status + socket + graphql
    return {"requests": requests, "rps": requests / (micros / 1e6), "p50": float(match.group(6)),
            "p95": float(match.group(7)), "p99": float(match.group(8)), "status_errors": status,
            "socket_errors": socket, "graphql_errors": graphql, "errors": errors,
            "error_rate": errors / max(requests + socket, 1)}


def start_redis(work_dir: Path, port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (make redis-server installs it)")
    (work_dir / "redis").mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(work_dir / "redis")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def mix(database_url: str, cerbos_url: str, data_dir: Path, ids: dict[str, str], work_dir: Path, *,
        users: int = 1000, duration: int = 30, think: tuple[int, int] = (1000, 3000)) -> str:
    """Both runs of the mix against a fresh `cityos serve` (workers = cores); the report's markdown section."""
    from cityos.embedded.process import free_port

    workers = os.cpu_count() or 1
    redis_port = free_port()
    redis = start_redis(work_dir, redis_port)
    env = {**os.environ, "DATABASE_URL": database_url, "CERBOS_URL": cerbos_url, "CITYOS_DATA_DIR": str(data_dir),
           "CITYOS_PORT": str(OURS_PORT), "LOG_LEVEL": "warning", "CITYOS_WORKERS": str(workers),
           "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           # one client address and one key for 1,000 shoppers: the per-IP and per-key budgets would refuse them
           "CITYOS_RATE_LIMITS": "false", "CITYOS_SCHEDULER": "false"}
    server = subprocess.Popen([sys.executable, "-m", "cityos", "serve"], cwd=ROOT, env=env,
                              stdout=(work_dir / "mix-server.log").open("w"), stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{OURS_PORT}/health/live")
        url = f"http://127.0.0.1:{OURS_PORT}/graphql"
        data = asyncio.run(shop_data(database_url, ids["store"]))
        asyncio.run(ensure_region(database_url, ids["tenant"]))
        carts, with_lines = create_carts(url, ids["key"], data["variants"])
        requests = bodies(data, carts, global_id("Store", ids["store"]))
        for name, items in requests.items():  # every kind answers without errors before the load
            answer = httpx.post(url, content=items[0], headers={"content-type": "application/json",
                                                                "x-publishable-api-key": ids["key"]}, timeout=30)
            if "errors" in answer.json():
                raise RuntimeError(f"{name}: {answer.text[:500]}")
        threads = max(workers, 2)
        load(url, lua_script(requests, ids["key"], (0, 0)), 64, 5, threads)  # warm up every worker
        alone = {name: load(url, lua_script(requests, ids["key"], (0, 0), only=name), 8, 5, threads)
                 for name, _, _ in MIX}
        shoppers = load(url, lua_script(requests, ids["key"], think), users, duration, threads)
        saturation = load(url, lua_script(requests, ids["key"], (0, 0)), users, duration, threads)
    finally:
        stop(server)
        redis.terminate()
        redis.wait(10)
    return render(shoppers, saturation, users, duration, think, workers, with_lines, alone)


def verdict(result: dict[str, Any]) -> str:
    checks = [("req/s", result["rps"] >= THRESHOLDS["rps"]), ("p95", result["p95"] < THRESHOLDS["p95_ms"]),
              ("errors", result["error_rate"] < THRESHOLDS["error_rate"])]
    return ", ".join(f"{name} {'✓' if ok else '✗'}" for name, ok in checks)


def render(shoppers: dict[str, Any], saturation: dict[str, Any], users: int, duration: int,
           think: tuple[int, int], workers: int, with_lines: int, alone: dict[str, dict[str, Any]]) -> str:
    weights = ", ".join(f"{name} {weight} %" for name, weight, _ in MIX)
    # error rate: (HTTP + socket + GraphQL errors) / (answered requests + requests that got no answer)
    lines = ["## Storefront load mix", "",
             f"{users} shoppers (one wrk connection each), {duration} s per run, `cityos serve` with "
             f"CITYOS_WORKERS={workers} (as many as cores) and Redis, Cerbos on, rate limits off (one client address "
             f"and key). Mix by weight: {weights}; the storefront's own operation documents (Categories, Products "
             "by category and by search, ProductByHandle, Cart) over random products, categories, search terms "
             f"and {CARTS} guest carts ({with_lines} with a line) of one store. Server, Postgres, Cerbos and wrk "
             f"share the machine's {os.cpu_count()} cores (no pinning), and other sessions' work ran on it too.", "",
             f"Deployment-plan thresholds: ≥ {THRESHOLDS['rps']:.0f} req/s, p95 < {THRESHOLDS['p95_ms']:.0f} ms, "
             f"< {THRESHOLDS['error_rate'] * 100:.1f} % errors.", "",
             "| run | req/s | p50 ms | p95 ms | p99 ms | requests | errors (HTTP / socket / GraphQL) | error rate "
             "| thresholds |", "|---|---|---|---|---|---|---|---|---|"]
    for name, result in ((f"shoppers, think {think[0]}–{think[1]} ms", shoppers), ("saturation, no think time",
                                                                                   saturation)):
        lines.append(f"| {name} | {result['rps']:.1f} | {result['p50']:.1f} | {result['p95']:.1f} | "
                     f"{result['p99']:.1f} | {result['requests']} | {result['status_errors']} / "
                     f"{result['socket_errors']} / {result['graphql_errors']} | {result['error_rate'] * 100:.2f} % "
                     f"| {verdict(result)} |")
    lines += ["", "Each operation alone (8 connections, no think time, 5 s), what bounds the mix:", "",
              "| operation | weight | req/s | p50 ms | p95 ms | p99 ms | errors |", "|---|---|---|---|---|---|---|"]
    for name, weight, _ in MIX:
        result = alone[name]
        lines.append(f"| {name} | {weight} % | {result['rps']:.1f} | {result['p50']:.1f} | {result['p95']:.1f} | "
                     f"{result['p99']:.1f} | {result['errors']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=30)
    parser.add_argument("--think-ms", default="1000-3000", help="min-max think time between a shopper's requests")
    parser.add_argument("--work-dir", type=Path, default=ROOT / ".cityos" / "bench-mix")
    parser.add_argument("--label", default="", help="suffix of the results file")
    add_dataset_arguments(parser)
    args = parser.parse_args()
    low, _, high = args.think_ms.partition("-")
    postgres, pdp = start_infrastructure(args.work_dir)
    try:
        url = postgres.url()
        asyncio.run(dataset.generate(url, args.tenants, args.stores, args.vendors, args.products, args.variants))
        ids = asyncio.run(pick_ids(url))
        started = time.monotonic()
        section = mix(url, pdp.url, args.work_dir / "data", ids, args.work_dir, users=args.users,
                      duration=args.duration, think=(int(low), int(high or low)))
    finally:
        pdp.stop()
        postgres.stop()
    report = (f"# Storefront load mix, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n`python -m bench.mix "
              f"{' '.join(sys.argv[1:])}` ({time.monotonic() - started:.0f} s)\n\n{section}")
    print(report)
    suffix = f"-{args.label}" if args.label else ""
    out = ROOT / "bench" / "results" / f"mix-{datetime.now(UTC):%Y-%m-%d}{suffix}.md"
    out.write_text(report)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
