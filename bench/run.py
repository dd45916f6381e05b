"""`make bench`: our server against PostGraphile v4 on the same database, in one run.

Postgres (embedded) and Cerbos are pinned to core 1, the server under test to core 0, one after the other: our
server (`cityos serve`, one uvicorn worker, Cerbos on) as a storefront guest and as a tenant admin, then
PostGraphile (default options + the simplify inflector). Every operation is first checked to return the same data
from both. Load: wrk (Debian), 1 thread, 8 connections. Also a floor: the nested data fetched by one SQL
statement with raw asyncpg in-process. Then the storefront load mix on the same data (bench/mix.py: 1,000 shoppers,
as many uvicorn workers as cores, against the deployment plan's thresholds). Writes bench/results/<date>.md.

    .venv/bin/python -m bench.run [--duration 10] [--mix-duration 30 --mix-users 1000] [--products 20000 …]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from bench import dataset

ROOT = Path(__file__).resolve().parents[1]
def _free_port() -> int:
    """Free ports, not fixed ones: several benchmarks (other checkouts) may run on one machine at once."""
    from cityos.embedded.process import free_port

    return free_port()


OURS_PORT, PG_PORT = _free_port(), _free_port()
SERVER_CORE, INFRA_CORE = 0, 1

NESTED_FIELDS = """vendors(first: 5) { nodes { id name products(first: 10) { nodes { id title
    variants { sku prices { amount } } } } } }"""
OURS = {
    "nested": "query Nested { stores(first: 10) { nodes { id name " + NESTED_FIELDS + " } } }",
    "nested_guest": "query NestedGuest { currentStore { id name " + NESTED_FIELDS + " } }",
    "point": """query Point($id: ID!) { node(id: $id) { ... on Product { id title
        variants { sku prices { amount } } } } }""",
    "listing": """query Listing($c: ID!) { products(first: 24, filter: {categoryId: $c}, sort: NEWEST) {
        nodes { id title thumbnail variants { prices { amount } } } } }""",
}
PG_NESTED = """vendorsByTenantIdAndStoreId(first: 5, orderBy: [CREATED_AT_ASC, ID_ASC]) { nodes { id name
    productsByTenantIdAndVendorId(first: 10, orderBy: [CREATED_AT_ASC, ID_ASC]) { nodes { id title
      variantsByTenantIdAndProductId(orderBy: [CREATED_AT_ASC, ID_ASC]) { nodes { sku
        variantPricesByTenantIdAndVariantId { nodes { amount } } } } } } } }"""
POSTGRAPHILE = {
    "nested": """query Nested($t: UUID!) { stores(first: 10, condition: {tenantId: $t},
        orderBy: [CREATED_AT_ASC, ID_ASC]) { nodes { id name """ + PG_NESTED + " } } }",
    "point": """query Point($t: UUID!, $id: UUID!) { product(tenantId: $t, id: $id) { id title
        variantsByTenantIdAndProductId(orderBy: [CREATED_AT_ASC, ID_ASC]) { nodes { sku
          variantPricesByTenantIdAndVariantId { nodes { amount } } } } } }""",
    "listing": """query Listing($t: UUID!, $s: UUID!) { products(first: 24, condition: {tenantId: $t, storeId: $s,
        status: "published"}, orderBy: [CREATED_AT_DESC, ID_DESC]) { nodes { id title images
        variantsByTenantIdAndProductId(orderBy: [CREATED_AT_ASC, ID_ASC]) { nodes {
          variantPricesByTenantIdAndVariantId { nodes { amount } } } } } } }""",
}
FLOOR_SQL = """
select json_agg(s) from (
  select st.id, st.name, (select json_agg(vv) from (
    select vd.id, vd.name, (select json_agg(pp) from (
      select pr.id, pr.title, (select json_agg(va) from (
        select v.sku, (select json_agg(vp.amount) from variant_price vp where vp.variant_id = v.id) as prices
        from variant v where v.product_id = pr.id order by v.created_at, v.id) va) as variants
      from product pr where pr.vendor_id = vd.id order by pr.created_at, pr.id limit 10) pp) as products
    from vendor vd where vd.store_id = st.id order by vd.created_at, vd.id limit 5) vv) as vendors
  from store st where st.tenant_id = $1 order by st.created_at, st.id limit 10) s"""


def local_id(global_id: str) -> str:
    return base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode().split(":", 1)[1]


def global_id(type_name: str, value: Any) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{value}".encode()).decode().rstrip("=")


def canonical_ours(name: str, data: dict[str, Any]) -> Any:
    def variants(product: dict[str, Any]) -> list[Any]:
        return [(v.get("sku"), [p["amount"] for p in v["prices"]]) for v in product["variants"]]

    def products(nodes: list[dict[str, Any]]) -> list[Any]:
        return [(local_id(p["id"]), p["title"], variants(p)) for p in nodes]

    def store(node: dict[str, Any]) -> Any:
        return (local_id(node["id"]), node["name"], [(local_id(v["id"]), v["name"], products(v["products"]["nodes"]))
                                                     for v in node["vendors"]["nodes"]])

    if name == "nested":
        return [store(node) for node in data["stores"]["nodes"]]
    if name == "nested_guest":
        return [store(data["currentStore"])]
    if name == "point":
        return products([data["node"]])
    return [(local_id(p["id"]), p["title"], p["thumbnail"], [[x["amount"] for x in v["prices"]] for v in p["variants"]])
            for p in data["products"]["nodes"]]


def canonical_postgraphile(name: str, data: dict[str, Any]) -> Any:
    def variants(product: dict[str, Any]) -> list[Any]:
        return [(v.get("sku"), [p["amount"] for p in v["variantPricesByTenantIdAndVariantId"]["nodes"]])
                for v in product["variantsByTenantIdAndProductId"]["nodes"]]

    if name in ("nested", "nested_guest"):
        return [(s["id"], s["name"], [(v["id"], v["name"], [(p["id"], p["title"], variants(p))
                                                            for p in v["productsByTenantIdAndVendorId"]["nodes"]])
                                      for v in s["vendorsByTenantIdAndStoreId"]["nodes"]])
                for s in data["stores"]["nodes"]]
    if name == "point":
        product = data["product"]
        return [(product["id"], product["title"], variants(product))]
    return [(p["id"], p["title"], p["images"][0] if p["images"] else None,
             [[x["amount"] for x in v["variantPricesByTenantIdAndVariantId"]["nodes"]]
              for v in p["variantsByTenantIdAndProductId"]["nodes"]]) for p in data["products"]["nodes"]]


def pin(pid: int, core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > core:
        os.sched_setaffinity(pid, {core})


def wait_http(url: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def wrk(url: str, body: bytes, headers: dict[str, str], duration: int, server_pid: int) -> dict[str, Any]:
    """wrk -t1 -c8 with a Lua script posting `body`; the server's CPU and peak RSS are sampled meanwhile."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        header_lines = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
        script.write(f'''wrk.method = "POST"
wrk.body = [==[{body.decode()}]==]
wrk.headers["Content-Type"] = "application/json"
{header_lines}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %.3f %.3f %.3f\\n", summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000))
end
''')
    server = psutil.Process(server_pid)
    cpu_before = sum(server.cpu_times()[:2])
    peak = server.memory_info().rss
    command = ["wrk", "-t1", "-c8", f"-d{duration}s", "--timeout", "10s", "-s", script.name, url]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pin(process.pid, INFRA_CORE)
    while process.poll() is None:
        peak = max(peak, server.memory_info().rss)
        time.sleep(0.2)
    output = process.stdout.read() if process.stdout else ""
    cpu = sum(server.cpu_times()[:2]) - cpu_before
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+)", output)
    if match is None:
        raise RuntimeError(output)
    requests, micros, status_errors, socket_errors = (int(match.group(i)) for i in range(1, 5))
    seconds = micros / 1e6
    os.unlink(script.name)
    return {"rps": requests / seconds, "p50": float(match.group(5)), "p95": float(match.group(6)),
            "p99": float(match.group(7)), "errors": status_errors + socket_errors, "cpu": cpu / seconds * 100,
            "rss_mb": peak / 2**20}


def post(url: str, query: str, variables: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    response = httpx.post(url, json={"query": query, "variables": variables}, headers=headers, timeout=60)
    body: dict[str, Any] = response.json()
    if "errors" in body:
        raise RuntimeError(f"{query[:40]}… failed: {body['errors']}")
    return body["data"]  # type: ignore[no-any-return]


async def floor(database_url: str, tenant_id: str, duration: float) -> float:
    connection = await asyncpg.connect(database_url)
    try:
        count, deadline = 0, time.monotonic() + duration
        while time.monotonic() < deadline:
            await connection.fetchval(FLOOR_SQL, tenant_id)
            count += 1
        return count / duration
    finally:
        await connection.close()


def start(argv: list[str], env: dict[str, str], log: Path, core: int, cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    pin(process.pid, core)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    for name, default in (("tenants", 5), ("stores", 20), ("vendors", 200), ("products", 20_000),
                          ("variants", 60_000)):
        parser.add_argument(f"--{name}", type=int, default=default)


def start_infrastructure(work_dir: Path) -> tuple[Any, Any]:
    """Embedded Postgres and the Cerbos PDP on the infrastructure core; the caller stops them."""
    from cityos.embedded.cerbos import EmbeddedCerbos
    from cityos.embedded.postgres import EmbeddedPostgres

    work_dir.mkdir(parents=True, exist_ok=True)
    postgres = EmbeddedPostgres(work_dir / "postgres")
    postgres.start()
    assert postgres.child and postgres.child.pid
    pin(postgres.child.pid, INFRA_CORE)
    pdp = EmbeddedCerbos(ROOT / "policies", work_dir / "cerbos")
    pdp.start()
    assert pdp.child and pdp.child.pid
    pin(pdp.child.pid, INFRA_CORE)
    return postgres, pdp


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--work-dir", type=Path, default=ROOT / ".cityos" / "bench")
    parser.add_argument("--profile", action="store_true", help="py-spy the nested admin run; add where time goes")
    parser.add_argument("--mix-duration", type=int, default=30, help="seconds per storefront-mix run (0: skip it)")
    parser.add_argument("--mix-users", type=int, default=1000)
    add_dataset_arguments(parser)
    args = parser.parse_args()

    from cityos.auth import dev_issuer

    postgres, pdp = start_infrastructure(args.work_dir)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        url = postgres.url()
        counts = asyncio.run(dataset.generate(url, args.tenants, args.stores, args.vendors, args.products,
                                              args.variants))
        ids = asyncio.run(pick_ids(url))
        data_dir = args.work_dir / "data"
        token = dev_issuer.mint(data_dir, dev_issuer.keycloak_shaped_claims(
            subject="bench", roles=["tenant_admin"], tenant=ids["slug"], stores=[], vendor=None, company=None,
            ttl_seconds=7200, client_id="medusa-backend"))
        env = {**os.environ, "DATABASE_URL": url, "CERBOS_URL": pdp.url, "CITYOS_DATA_DIR": str(data_dir),
               "CITYOS_PORT": str(OURS_PORT), "LOG_LEVEL": "warning", "PROMETHEUS_ENABLED": "true",
               "CITYOS_RATE_LIMITS": "false"}  # one client address and key: the limits would measure themselves
        env.pop("REDIS_URL", None)
        ours = start([sys.executable, "-m", "cityos", "serve"], env, args.work_dir / "ours.log", SERVER_CORE)
        processes.append(ours)
        wait_http(f"http://127.0.0.1:{OURS_PORT}/health/live")
        ours_url = f"http://127.0.0.1:{OURS_PORT}/graphql"
        guest = {"x-publishable-api-key": ids["key"]}
        admin = {"authorization": f"Bearer {token}", "x-publishable-api-key": ids["key"]}
        variables = {"nested": {}, "nested_guest": {}, "point": {"id": global_id("Product", ids["product"])},
                     "listing": {"c": global_id("Category", ids["category"])}}
        pg_variables = {"nested": {"t": ids["tenant"]}, "nested_guest": {"t": ids["tenant"]},
                        "point": {"t": ids["tenant"], "id": ids["product"]},
                        "listing": {"t": ids["tenant"], "s": ids["store"]}}
        expected = {name: canonical_ours(name, post(ours_url, OURS[name], variables[name], admin))
                    for name in ("nested", "point", "listing")}
        expected_guest = canonical_ours("nested_guest", post(ours_url, OURS["nested_guest"], {}, guest))
        results: dict[tuple[str, str], dict[str, Any]] = {}
        runs = [("nested", "admin", admin), ("nested_guest", "guest", guest), ("point", "admin", admin),
                ("point", "guest", guest), ("listing", "admin", admin), ("listing", "guest", guest)]
        profile = ""
        for name, role, headers in runs:
            body = httpx.Request("POST", ours_url, json={"query": OURS[name], "variables": variables[name]}).content
            wrk(ours_url, body, headers, 2, ours.pid)  # warm up
            if args.profile and (name, role) == ("nested", "admin"):
                profile = profiled(ours.pid, lambda body=body, headers=headers: wrk(
                    ours_url, body, headers, args.duration, ours.pid))
            results[(f"ours-{role}", name)] = wrk(ours_url, body, headers, args.duration, ours.pid)
        stop(ours)
        processes.remove(ours)

        postgraphile = start(["node", "bench/postgraphile/node_modules/postgraphile/cli.js", "-c", url,
                              "--append-plugins", "@graphile-contrib/pg-simplify-inflector", "-p", str(PG_PORT),
                              "-n", "127.0.0.1", "--disable-query-log"],
                             {**os.environ, "NODE_PATH": str(ROOT / "bench/postgraphile/node_modules")},
                             args.work_dir / "postgraphile.log", SERVER_CORE)
        processes.append(postgraphile)
        pg_url = f"http://127.0.0.1:{PG_PORT}/graphql"
        wait_http(pg_url.replace("/graphql", "/graphiql"))
        checks = {}
        for name in ("nested", "point", "listing"):
            theirs = canonical_postgraphile(name, post(pg_url, POSTGRAPHILE[name], pg_variables[name], {}))
            checks[name] = theirs == expected[name]
        first_store = canonical_postgraphile("nested", post(pg_url, POSTGRAPHILE["nested"], pg_variables["nested"],
                                                            {}))
        checks["nested_guest"] = any(store == expected_guest[0] for store in first_store)
        for name in ("nested", "point", "listing"):
            body = httpx.Request("POST", pg_url, json={"query": POSTGRAPHILE[name],
                                                       "variables": pg_variables[name]}).content
            wrk(pg_url, body, {}, 2, postgraphile.pid)
            results[("postgraphile", name)] = wrk(pg_url, body, {}, args.duration, postgraphile.pid)
        stop(postgraphile)
        processes.remove(postgraphile)
        floor_rps = asyncio.run(floor(url, ids["tenant"], args.duration))
        report = render(results, checks, counts, floor_rps, args.duration)
        if args.mix_duration:
            from bench.mix import mix

            report += "\n" + mix(url, pdp.url, data_dir, ids, args.work_dir, users=args.mix_users,
                                  duration=args.mix_duration)
        report += profile
        print(report)
        out = ROOT / "bench" / "results" / f"{datetime.now(UTC):%Y-%m-%d}.md"
        out.write_text(report)
        print(f"written to {out}")
    finally:
        for process in processes:
            stop(process)
        pdp.stop()
        postgres.stop()


def profiled(pid: int, load: Any, what: str = "nested admin request") -> str:
    """Sample the server with py-spy while `load` runs; the functions with the most samples (own and total)."""
    raw = Path(tempfile.mkstemp(suffix=".txt")[1])
    spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--rate", "200",
                            "--format", "raw", "--output", str(raw), "--nonblocking"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pin(spy.pid, INFRA_CORE)
    time.sleep(1)
    load()
    spy.send_signal(signal.SIGINT)
    spy.wait(30)
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [frame.split(" (")[0] + " (" + frame.split(" (")[-1].split(":")[0].split("/site-packages/")[-1]
                  .split("/cityos/")[-1] + ")" for frame in stack.split(";") if frame]
        samples += count
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            total[frame] = total.get(frame, 0) + count
    raw.unlink()
    lines = ["", f"## Where the {what} spends its time (py-spy, {samples} samples)", "",
             "| function (own time) | % of samples |", "|---|---|"]
    lines += [f"| `{name}` | {count / samples * 100:.1f} |" for name, count in
              sorted(own.items(), key=lambda item: -item[1])[:15]]
    lines += ["", "| function (including callees) | % of samples |", "|---|---|"]
    lines += [f"| `{name}` | {count / samples * 100:.1f} |" for name, count in
              sorted(total.items(), key=lambda item: -item[1])[:25]]
    return "\n".join(lines) + "\n"


async def pick_ids(database_url: str) -> dict[str, str]:
    connection = await asyncpg.connect(database_url)
    try:
        tenant = await connection.fetchrow("select id, slug from tenant where slug = 'bench-0'")
        store = await connection.fetchrow("select id from store where tenant_id = $1 order by created_at, id limit 1",
                                          tenant["id"])
        product = await connection.fetchval("select id from product where store_id = $1 order by created_at, id "
                                            "offset 7 limit 1", store["id"])
        category = await connection.fetchval("select id from category where store_id = $1 and handle = 'category-0'",
                                             store["id"])
        return {"tenant": str(tenant["id"]), "slug": tenant["slug"], "store": str(store["id"]),
                "product": str(product), "category": str(category), "key": f"pk_bench_0_0_{'x' * 24}"}
    finally:
        await connection.close()


def render(results: dict[tuple[str, str], dict[str, Any]], checks: dict[str, bool], counts: dict[str, Any],
           floor_rps: float, duration: int) -> str:
    lines = [f"# Benchmark: CityOS vs PostGraphile v4 ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)", "",
             f"Dataset: {counts}. wrk -t1 -c8 -d{duration}s per run after a 2 s warm-up; server on core 0, Postgres, "
             "Cerbos and wrk on core 1; one uvicorn worker, Cerbos on.", "",
             "Equal data checked first: " + ", ".join(f"{name} {'✓' if ok else '✗'}" for name, ok in checks.items()),
             "", "| server | operation | req/s | p50 ms | p95 ms | p99 ms | errors | server CPU % | peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (server, name), r in results.items():
        lines.append(f"| {server} | {name} | {r['rps']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | "
                     f"{r['errors']} | {r['cpu']:.0f} | {r['rss_mb']:.0f} |")
    lines += ["", "| operation | ours (admin) / PostGraphile | ours (guest) / PostGraphile |", "|---|---|---|"]
    for name, guest_name in (("nested", "nested_guest"), ("point", "point"), ("listing", "listing")):
        theirs = results[("postgraphile", name)]["rps"]
        lines.append(f"| {name} | {results[('ours-admin', name)]['rps'] / theirs:.3f} | "
                     f"{results[('ours-guest', guest_name)]['rps'] / theirs:.3f} |")
    lines += ["", f"Floor (the nested data by one SQL statement, raw asyncpg, in-process): {floor_rps:.1f} req/s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
