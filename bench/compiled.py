"""The compiled read path against the resolvers on the same data, in the same run: `bench.run`'s dataset and wrk
harness, our server started twice (CITYOS_COMPILED_READS on, then off), no PostGraphile. Checks that both paths
return the same bytes first, and that the compiled run really compiled (the root-field counter).

    .venv/bin/python -m bench.compiled --duration 20 [--products 20000 …]
    .venv/bin/python -m bench.compiled --paths compiled --runs point --label step --profile   # one step of #12.4
    .venv/bin/python -m bench.compiled --paths compiled --runs sf_cart --profile --profile-run sf_cart

`--label` names the results file (bench/results/compiled-<date>-<label>.md) so that each step's before/after
stays on record; `--profile` samples the server with py-spy during the point run and appends where time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import re
import sys
import uuid
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import dataset
from bench.mix import create_carts, document, ensure_region, shop_data
from bench.run import (
    OURS,
    OURS_PORT,
    ROOT,
    SERVER_CORE,
    add_dataset_arguments,
    global_id,
    pick_ids,
    profiled,
    start,
    start_infrastructure,
    stop,
    wait_http,
    wrk,
)

RUNS = (("nested", "admin"), ("nested_guest", "guest"), ("point", "admin"), ("listing", "admin"), ("listing", "guest"),
        ("sf_listing", "guest"), ("sf_product", "guest"), ("sf_cart", "guest"))
# The storefront mix's own documents (bench.mix): its listing (`storefront/Products` by category), product page and
# cart (a guest cart with one line, made through the API; the resolvers answer it: carts are not compiled).
STOREFRONT = {"sf_listing": "Products", "sf_product": "ProductByHandle", "sf_cart": "Cart"}


async def published_handle(database_url: str, store_id: str) -> str:
    """A published product of the benchmark store (the guest's product page)."""
    connection = await asyncpg.connect(database_url)
    try:
        handle: str = await connection.fetchval(
            "select handle from product where store_id = $1 and status = 'published' order by created_at, id "
            "offset 7 limit 1", uuid.UUID(store_id))
        return handle
    finally:
        await connection.close()


def root_fields(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {path: float(value) for path, value in
            re.findall(r'cityos_graphql_root_fields_total\{path="(\w+)"\} ([\d.e+]+)', text)}


def parse_variant(text: str) -> tuple[str, Path, dict[str, str]]:
    """`label=DIR[,NAME=VALUE…]`: the server from source tree DIR (e.g. a `git worktree` of an earlier commit)
    with extra environment."""
    label, _, rest = text.partition("=")
    directory, *settings = rest.split(",")
    return label, Path(directory).resolve(), dict(setting.split("=", 1) for setting in settings)


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--work-dir", type=Path, default=ROOT / ".cityos" / "bench-compiled")
    parser.add_argument("--paths", default="compiled,resolvers", help="comma-separated: compiled, resolvers")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL=DIR[,ENV=VALUE…]",
                        help="instead of --paths: compare servers from several source trees (compiled path), "
                             "e.g. --variant before=/tmp/perf-before --variant after=.")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the servers this many times")
    parser.add_argument("--runs", default=",".join(name for name, _ in RUNS),
                        help="comma-separated: " + ", ".join(name for name, _ in RUNS))
    parser.add_argument("--label", default="", help="suffix of the results file")
    parser.add_argument("--profile", action="store_true", help="py-spy the point run and add where time goes")
    parser.add_argument("--profile-run", default="point", help="the run --profile samples")
    add_dataset_arguments(parser)
    args = parser.parse_args()
    servers: list[tuple[str, Path, dict[str, str]]] = [parse_variant(text) for text in args.variant] or [
        (path, ROOT, {"CITYOS_COMPILED_READS": "true" if path == "compiled" else "false"})
        for path in ("compiled", "resolvers") if path in args.paths.split(",")]
    labels = [label for label, _, _ in servers]
    runs = [(name, role) for name, role in RUNS if name in args.runs.split(",")]
    profile = ""

    from cityos.auth import dev_issuer

    postgres, pdp = start_infrastructure(args.work_dir)
    results: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    bodies: dict[tuple[str, str], dict[str, bytes]] = {}
    counters: dict[str, dict[str, float]] = {}
    try:
        url = postgres.url()
        counts = asyncio.run(dataset.generate(url, args.tenants, args.stores, args.vendors, args.products,
                                              args.variants))
        ids = asyncio.run(pick_ids(url))
        data_dir = args.work_dir / "data"
        token = dev_issuer.mint(data_dir, dev_issuer.keycloak_shaped_claims(
            subject="bench", roles=["tenant_admin"], tenant=ids["slug"], stores=[], vendor=None, company=None,
            ttl_seconds=7200, client_id="medusa-backend"))
        headers = {"admin": {"authorization": f"Bearer {token}", "x-publishable-api-key": ids["key"]},
                   "guest": {"x-publishable-api-key": ids["key"]}}
        variables = {"nested": {}, "nested_guest": {}, "point": {"id": global_id("Product", ids["product"])},
                     "listing": {"c": global_id("Category", ids["category"])},
                     "sf_listing": {"filter": {"categoryId": global_id("Category", ids["category"])}, "sort": "NEWEST",
                                    "first": 24},
                     "sf_product": {"handle": asyncio.run(published_handle(url, ids["store"]))}}
        documents = {**OURS, **{name: document(file) for name, file in STOREFRONT.items()}}
        for round_number in range(args.rounds):
            for label, source, extra in servers:
                env = {**os.environ, "DATABASE_URL": url, "CERBOS_URL": pdp.url, "CITYOS_DATA_DIR": str(data_dir),
                       "CITYOS_PORT": str(OURS_PORT), "LOG_LEVEL": "warning", "PROMETHEUS_ENABLED": "true",
                       # A nested read costs hundreds of points: at these rates the default budgets answer 429.
                       "CITYOS_RATE_LIMITS": "false", "PYTHONPATH": str(source), **extra}
                env.pop("REDIS_URL", None)
                ours = start([sys.executable, "-m", "cityos", "serve"], env, args.work_dir / f"{label}.log",
                             SERVER_CORE, cwd=source)
                try:
                    wait_http(f"http://127.0.0.1:{OURS_PORT}/health/live")
                    ours_url = f"http://127.0.0.1:{OURS_PORT}/graphql"
                    if ("sf_cart", "guest") in runs and "sf_cart" not in variables:
                        asyncio.run(ensure_region(url, ids["tenant"]))
                        variant = asyncio.run(shop_data(url, ids["store"]))["variants"][0]
                        variables["sf_cart"] = {"id": create_carts(ours_url, ids["key"], [variant])[0][0]}
                    for name, role in runs:
                        response = httpx.post(ours_url, json={"query": documents[name], "variables": variables[name]},
                                              headers=headers[role], timeout=60)
                        assert "errors" not in response.json(), response.text
                        bodies.setdefault((name, role), {})[label] = response.content
                        body = httpx.Request("POST", ours_url, json={"query": documents[name],
                                                                     "variables": variables[name]}).content
                        wrk(ours_url, body, headers[role], 2, ours.pid)  # warm up
                        duration = args.duration if name == "nested" else max(args.duration // 2, 5)
                        if args.profile and name == args.profile_run and label == labels[-1] and round_number == 0:
                            profile = profiled(ours.pid, functools.partial(
                                wrk, ours_url, body, headers[role], duration, ours.pid), f"{name} read ({label})")
                        results.setdefault((label, name, role), []).append(
                            wrk(ours_url, body, headers[role], duration, ours.pid))
                    counters[label] = root_fields(OURS_PORT)
                finally:
                    stop(ours)
    finally:
        pdp.stop()
        postgres.stop()
    identical = {key: len(set(by_label.values())) == 1 for key, by_label in bodies.items()}
    command = " ".join(["python -m bench.compiled", *sys.argv[1:]])
    lines = [f"# Compiled read path: {' vs '.join(labels)}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "",
             f"`{command}`: dataset {counts}; one uvicorn worker, Cerbos on, rate limits off, wrk -t1 -c8 "
             f"(nested {args.duration} s, the others half, after a 2 s warm-up), server on core 0 and "
             f"Postgres/Cerbos/wrk on core 1; {args.rounds} round(s), the servers alternating. The machine was shared "
             "with other sessions' work during the run: compare the servers with each other within this run, not "
             "with other days.", "",
             "| operation | role | server | req/s (median of rounds) | rounds req/s | p50 ms | p95 ms | p99 ms "
             "| errors | server CPU % |", "|---|---|---|---|---|---|---|---|---|---|"]
    medians: dict[tuple[str, str, str], float] = {}
    for name, role in runs:
        for label in labels:
            rounds = results[(label, name, role)]
            middle = sorted(rounds, key=lambda r: r["rps"])[len(rounds) // 2]
            each = " / ".join(f"{r['rps']:.0f}" for r in rounds)
            medians[(label, name, role)] = middle["rps"]
            lines.append(f"| {name} | {role} | {label} | {middle['rps']:.1f} | "
                         f"{each} | {middle['p50']:.1f} "
                         f"| {middle['p95']:.1f} | {middle['p99']:.1f} | {sum(r['errors'] for r in rounds)} "
                         f"| {middle['cpu']:.0f} |")
    if len(labels) >= 2:
        first, last = labels[0], labels[-1]
        lines += ["", f"| operation | role | {last} / {first} | same bytes |", "|---|---|---|---|"]
        for name, role in runs:
            lines.append(f"| {name} | {role} | {medians[(last, name, role)] / medians[(first, name, role)]:.2f}× "
                         f"| {identical[(name, role)]} |")
    lines += ["", "Root fields by path (`cityos_graphql_root_fields_total`): "
              + ", ".join(f"{label} server {counters[label]}" for label in labels) + ".", ""]
    report = "\n".join(lines) + profile
    print(report)
    suffix = f"-{args.label}" if args.label else ""
    out = ROOT / "bench" / "results" / f"compiled-{datetime.now(UTC):%Y-%m-%d}{suffix}.md"
    out.write_text(report)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
