"""The compiled read path against the resolvers on the same data, in the same run: `bench.run`'s dataset and wrk
harness, our server started twice (CITYOS_COMPILED_READS on, then off), no PostGraphile. Checks that both paths
return the same bytes first, and that the compiled run really compiled (the root-field counter).

    .venv/bin/python -m bench.compiled --duration 20 [--products 20000 …]
    .venv/bin/python -m bench.compiled --paths compiled --runs point --label step --profile   # one step of #12.4

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
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import dataset
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

RUNS = (("nested", "admin"), ("nested_guest", "guest"), ("point", "admin"))


def root_fields(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {path: float(value) for path, value in
            re.findall(r'cityos_graphql_root_fields_total\{path="(\w+)"\} ([\d.e+]+)', text)}


def main() -> None:
    warnings.simplefilter("ignore")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--work-dir", type=Path, default=ROOT / ".cityos" / "bench-compiled")
    parser.add_argument("--paths", default="compiled,resolvers", help="comma-separated: compiled, resolvers")
    parser.add_argument("--runs", default=",".join(name for name, _ in RUNS),
                        help="comma-separated: " + ", ".join(name for name, _ in RUNS))
    parser.add_argument("--label", default="", help="suffix of the results file")
    parser.add_argument("--profile", action="store_true", help="py-spy the point run and add where time goes")
    add_dataset_arguments(parser)
    args = parser.parse_args()
    paths = [path for path in ("compiled", "resolvers") if path in args.paths.split(",")]
    runs = [(name, role) for name, role in RUNS if name in args.runs.split(",")]
    profile = ""

    from cityos.auth import dev_issuer

    postgres, pdp = start_infrastructure(args.work_dir)
    results: dict[tuple[str, str, str], dict[str, Any]] = {}
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
        variables = {"nested": {}, "nested_guest": {}, "point": {"id": global_id("Product", ids["product"])}}
        for path in paths:
            setting = "true" if path == "compiled" else "false"
            env = {**os.environ, "DATABASE_URL": url, "CERBOS_URL": pdp.url, "CITYOS_DATA_DIR": str(data_dir),
                   "CITYOS_PORT": str(OURS_PORT), "LOG_LEVEL": "warning", "PROMETHEUS_ENABLED": "true",
                   "CITYOS_COMPILED_READS": setting,
                   # A nested read costs hundreds of points: at these rates the default budgets answer 429.
                   "CITYOS_RATE_LIMITS": "false"}
            env.pop("REDIS_URL", None)
            ours = start([sys.executable, "-m", "cityos", "serve"], env, args.work_dir / f"{path}.log", SERVER_CORE)
            try:
                wait_http(f"http://127.0.0.1:{OURS_PORT}/health/live")
                ours_url = f"http://127.0.0.1:{OURS_PORT}/graphql"
                for name, role in runs:
                    response = httpx.post(ours_url, json={"query": OURS[name], "variables": variables[name]},
                                          headers=headers[role], timeout=60)
                    assert "errors" not in response.json(), response.text
                    bodies.setdefault((name, role), {})[path] = response.content
                    body = httpx.Request("POST", ours_url, json={"query": OURS[name],
                                                                 "variables": variables[name]}).content
                    wrk(ours_url, body, headers[role], 2, ours.pid)  # warm up
                    duration = args.duration if name == "nested" else max(args.duration // 2, 5)
                    if args.profile and name == "point" and path == paths[0]:
                        profile = profiled(ours.pid, functools.partial(
                            wrk, ours_url, body, headers[role], duration, ours.pid), "point read")
                    results[(path, name, role)] = wrk(ours_url, body, headers[role], duration, ours.pid)
                counters[path] = root_fields(OURS_PORT)
            finally:
                stop(ours)
    finally:
        pdp.stop()
        postgres.stop()
    identical = {key: len(set(by_path.values())) == 1 for key, by_path in bodies.items()}
    lines = [f"# Compiled read path vs resolvers, {datetime.now(UTC):%Y-%m-%d}", "",
             f"`python -m bench.compiled --duration {args.duration}` (nested admin {args.duration} s per path, "
             f"the others half): dataset {counts}; one uvicorn worker, "
             "Cerbos on, rate limits off, wrk -t1 -c8, server on core 0 and Postgres/Cerbos/wrk on core 1. "
             "The machine was shared with other sessions' work during the run: compare the two paths "
             "with each other, not with other "
             "days.", "",
             "| operation | role | path | req/s | p50 ms | p95 ms | p99 ms | errors | server CPU % |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, role in runs:
        for path in paths:
            r = results[(path, name, role)]
            lines.append(f"| {name} | {role} | {path} | {r['rps']:.1f} | {r['p50']:.1f} | {r['p95']:.1f} "
                         f"| {r['p99']:.1f} | {r['errors']} | {r['cpu']:.0f} |")
    if len(paths) == 2:
        lines += ["", "| operation | role | compiled / resolvers | same bytes |", "|---|---|---|---|"]
        for name, role in runs:
            fast, slow = results[("compiled", name, role)], results[("resolvers", name, role)]
            lines.append(f"| {name} | {role} | {fast['rps'] / slow['rps']:.1f}× | {identical[(name, role)]} |")
    lines += ["", "Root fields by path (`cityos_graphql_root_fields_total`): "
              + ", ".join(f"{path} server {counters[path]}" for path in paths) + ".", ""]
    report = "\n".join(lines) + profile
    print(report)
    suffix = f"-{args.label}" if args.label else ""
    out = ROOT / "bench" / "results" / f"compiled-{datetime.now(UTC):%Y-%m-%d}{suffix}.md"
    out.write_text(report)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
