"""Benchmark: the public directory's searches over a large network, on PostgreSQL.

It creates a scratch database, adds `--practitioners` practitioners with
bench/directory_data.py, and times each kind of search `--calls` times with varying
values: in-process (the route's own function on a session: SQL, building, JSON; no HTTP)
and over HTTP (httpx to the real server under uvicorn on loopback, one request at a
time). It prints p50, p99 and mean in milliseconds per kind, and the Bundle.total (none
past the count's cap of 1,000 unless _total=accurate), then drops the database.

    .venv/bin/python bench/bench_directory.py [--practitioners 100000] [--calls 200]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parents[1] / "tests"))

from directory_data import add_practitioners  # noqa: E402

from openhmo.db import make_engine, migrate, session_factory  # noqa: E402

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SPECIALTIES = ["207Q00000X", "207R00000X", "208000000X", "207RC0000X", "207N00000X", "207V00000X"]
NAMES = ["smi", "joh", "gar", "ngu", "oka", "wal", "mur", "pat", "che", "lee", "tan", "kel"]


def _points(rng: random.Random, n: int) -> list[tuple[float, float]]:
    from openhmo.reference.geo import lookup_zip

    zips = ["02108", "02139", "02143", "02445", "01608", "02301", "01801", "02169", "01960"]
    return [(z.lat, z.lon) for z in (lookup_zip(rng.choice(zips)) for _ in range(n))]


def searches(rng: random.Random, calls: int) -> dict[str, list[str]]:
    near = [f"{lat:.4f}|{lon:.4f}" for lat, lon in _points(rng, calls)]
    core = "network=Organization/network-openhmo-core"
    return {
        "specialty": [f"/fhir/PractitionerRole?specialty={rng.choice(SPECIALTIES)}" for _ in near],
        "name": [f"/fhir/Practitioner?name={rng.choice(NAMES)}" for _ in near],
        "specialty + accepting": [
            f"/fhir/PractitionerRole?specialty={rng.choice(SPECIALTIES)}&new-patient=newpt"
            for _ in near
        ],
        "near 5 mi": [f"/fhir/PractitionerRole?location.near={p}|5|mi" for p in near],
        "accepting": ["/fhir/PractitionerRole?new-patient=newpt" for _ in near],
        "network": [f"/fhir/PractitionerRole?{core}" for _ in near],
        "network + accepting": [f"/fhir/PractitionerRole?{core}&new-patient=newpt" for _ in near],
        "network, _total=accurate": [
            f"/fhir/PractitionerRole?{core}&_total=accurate" for _ in near
        ],
        "network, _total=none": [f"/fhir/PractitionerRole?{core}&_total=none" for _ in near],
        "specialty+near+network+accepting": [
            f"/fhir/PractitionerRole?specialty={rng.choice(SPECIALTIES)}&location.near={p}|10|mi"
            f"&{core}&new-patient=newpt"
            for p in near
        ],
        "Location near 5 mi": [f"/fhir/Location?near={p}|5|mi" for p in near],
        "specialty + _include": [
            f"/fhir/PractitionerRole?specialty={rng.choice(SPECIALTIES)}"
            "&_include=PractitionerRole:practitioner&_include=PractitionerRole:location"
            for _ in near
        ],
        "HealthcareService specialty": [
            f"/fhir/HealthcareService?specialty={rng.choice(SPECIALTIES)}" for _ in near
        ],
    }


def _route(path: str):
    from openhmo.api.fhir import directory

    kind = urlsplit(path).path.rsplit("/", 1)[-1]
    return {
        "Practitioner": directory.search_practitioner,
        "PractitionerRole": directory.search_practitioner_role,
        "Location": directory.search_location,
        "HealthcareService": directory.search_healthcare_service,
    }[kind]


def in_process(engine, path: str) -> float:
    from starlette.requests import Request

    parts = urlsplit(path)
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "server": ("bench", 80),
        "path": parts.path,
        "root_path": "",
        "query_string": parts.query.encode(),
        "headers": [],
    }
    started = time.perf_counter()
    with session_factory(engine)() as session, session.begin():
        answer = _route(path)(Request(scope), session)
    assert answer.status_code == 200, answer.body[:300]
    return (time.perf_counter() - started) * 1000


def over_http(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    answer = client.get(path)
    assert answer.status_code == 200, answer.text[:300]
    return (time.perf_counter() - started) * 1000


def _summary(times: list[float]) -> str:
    times = sorted(times)
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    return f"{statistics.median(times):7.1f} {p99:7.1f} {statistics.fmean(times):7.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--practitioners", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--admin-url", default=ADMIN)
    parser.add_argument(
        "--random-page-cost",
        type=float,
        help="set for the database (1.1 is the usual setting for SSDs; PostgreSQL's default is 4)",
    )
    args = parser.parse_args()
    name = f"openhmo_dirbench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(args.admin_url).set(database=name).render_as_string(False))
    try:
        run(engine, args, name)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def run(engine, args, name: str) -> None:
    from api_support import serve

    migrate(engine)
    started = time.monotonic()
    counts = add_practitioners(engine, args.practitioners)
    loaded = time.monotonic() - started
    with engine.connect() as conn:
        # As autovacuum leaves a table once it has settled: the visibility map (the
        # statistics add_practitioners has refreshed).
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM"))
        if args.random_page_cost:
            conn.execute(
                text(f"ALTER DATABASE {name} SET random_page_cost = {float(args.random_page_cost)}")
            )
    print(f"{platform.python_implementation()} {platform.python_version()}, PostgreSQL, {counts}")
    if args.random_page_cost:
        print(f"random_page_cost = {args.random_page_cost}")
    engine.dispose()  # new connections, with the database's settings
    print(f"loaded in {loaded:.1f} s; {args.calls} calls per kind (ms: p50 p99 mean)")
    kinds = searches(random.Random(11), args.calls)
    with serve(engine) as base, httpx.Client(base_url=base) as client:
        print(f"{'search':36} {'in-process':>23}   {'HTTP':>23}   total")
        for kind, paths in kinds.items():
            for path in paths[:10]:  # warm the caches and the plans
                in_process(engine, path)
                over_http(client, path)
            local = [in_process(engine, p) for p in paths]
            remote = [over_http(client, p) for p in paths]
            total = client.get(paths[0]).json().get("total", "-")
            print(f"{kind:36} {_summary(local)}   {_summary(remote)}   {total}")


if __name__ == "__main__":
    main()
