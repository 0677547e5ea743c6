"""Benchmark: the HTTP API under load over loopback, on SQLite and on PostgreSQL.

For each database it builds a world (the demo's HMO with `--families` families and
their year of claims, plus `--practitioners` extra practitioners in the directory, each
with a location and a contract), starts `openhmo serve` (uvicorn, one worker) in its own
process, and drives it from a second process (bench/load.py), for each scenario twice:
first closed-loop (four callers, each sending as soon as its last answer came: the rate
the server carries, its capacity), then open-loop (requests start on schedule whatever
the server does; latency counts from the planned start) at the issue's target rate if
the capacity exceeds it by a quarter, else at 70% of the capacity, so every run ends
(the directory's rate, which the issue leaves open, is 50 searches a second):

- directory search (anonymous): by specialty near a place, by name, by network and
  accepting new patients, over all the practitioners;
- eligibility: CoverageEligibilityRequest/$submit for random members (system token);
- claim submission: Claim/$submit of a new one-line professional claim for a random
  member, adjudicated in real time (system token).

It reports requests per second offered and achieved, p50 and p99 latency, the CPU time
a request took of the server, of PostgreSQL's processes and of the load generator (from
/proc, over the whole run, warm-up included: on two shared cores these say where a
request's cost is), and the peak memory of this process tree (server and load
generator), with the issue's targets.

    .venv/bin/python bench/bench_api.py [--families 400] [--practitioners 100000]
        [--seconds 15] [--databases sqlite,postgresql] [--work DIR] [--workers 1]
        [--scenarios directory,eligibility,claim] [--keep | --url URL]

`--keep` leaves each world's database in place and prints its URL; `--url` benches such
a database again without building it (the claims of earlier runs stay in it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import simplejson

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from _common import TreeMemory, cpu_seconds  # noqa: E402

POSTGRES_ADMIN = os.environ.get(
    "OPENHMO_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SECRET = "bench-password-" + "x" * 16
KEY = "bench-signing-key-" + "y" * 32
MEMBER_SYSTEM = "https://openhmo.org/fhir/sid/member-number"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"

# The targets on this machine with PostgreSQL: (rate/s, p99 ms).
TARGETS = {"eligibility": (200, 10.0), "claim": (100, 25.0), "directory": (None, 30.0)}


def _machine() -> str:
    info = Path("/proc/cpuinfo")
    if info.exists():
        names = [
            ln.split(":", 1)[1].strip()
            for ln in info.read_text().splitlines()
            if ln.startswith("model name")
        ]
        if names:
            return f"{names[0]} x {len(names)}"
    return platform.processor() or platform.machine()


# --- the world -----------------------------------------------------------------------


def _database(kind: str, work: Path) -> tuple[str, callable]:
    """A new empty database of `kind`; its URL and how to drop it."""
    if kind == "sqlite":
        path = work / f"bench-{uuid.uuid4().hex[:8]}.db"
        return f"sqlite:///{path}", lambda: None
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from openhmo.db import make_engine

    name = f"openhmo_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    return make_url(POSTGRES_ADMIN).set(database=name).render_as_string(False), drop


def build_world(url: str, families: int, practitioners: int, work: Path) -> dict:
    """The demo's HMO, the extra practitioners, and the accounts the load uses."""
    from directory_data import add_practitioners

    from openhmo.access.accounts import NewAccount, create_account
    from openhmo.db import make_engine, migrate, session_factory
    from openhmo.demo.generator import DemoConfig, build_demo

    engine = make_engine(url)
    migrate(engine)
    started = time.monotonic()
    build_demo(engine, DemoConfig(families=families, workdir=work / "demo-files"))
    demo_seconds = time.monotonic() - started
    started = time.monotonic()
    add_practitioners(engine, practitioners)
    directory_seconds = time.monotonic() - started
    with session_factory(engine)() as s:
        create_account(s, NewAccount("bench-clearinghouse", "system"), SECRET, actor="bench")
        s.commit()
    engine.dispose()
    return {
        "members": members_of(url),
        "demo_seconds": round(demo_seconds, 1),
        "directory_seconds": round(directory_seconds, 1),
    }


def members_of(url: str) -> list[tuple[str, str, str]]:
    """(member number, birth date, PCP's NPI) of every member with a PCP on the bench day."""
    from sqlalchemy import select

    from openhmo.db import make_engine, session_factory
    from openhmo.enrollment.models import Member, PcpAssignment
    from openhmo.network.models import Provider

    engine = make_engine(url)
    with session_factory(engine)() as s:
        day = date(2026, 6, 15)
        pairs = s.execute(
            select(Member.member_number, Member.birth_date, Provider.npi)
            .join(PcpAssignment, PcpAssignment.member_id == Member.id)
            .join(Provider, Provider.id == PcpAssignment.provider_id)
            .where(
                PcpAssignment.effective_from <= day,
                (PcpAssignment.effective_to.is_(None)) | (PcpAssignment.effective_to >= day),
            )
        ).all()
    engine.dispose()
    return [(m, b.isoformat(), npi) for m, b, npi in pairs]


# --- the server ----------------------------------------------------------------------


def start_server(url: str, port: int, workers: int = 1, lifespan: str = "auto") -> subprocess.Popen:
    env = {**os.environ, "OPENHMO_DATABASE_URL": url, "OPENHMO_API_SIGNING_KEY": KEY}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "openhmo.api.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--lifespan",
            lifespan,
            *(["--workers", str(workers)] if workers > 1 else []),
        ],
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    sys.exit("the server did not start")


def stop_server(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:  # a worker still finishing a request: not our figure
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(20)


def _token(base: str) -> str:
    answer = httpx.post(
        f"{base}/auth/token",
        data={"grant_type": "client_credentials"},
        auth=("bench-clearinghouse", SECRET),
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


# --- the scenarios -------------------------------------------------------------------


def eligibility_request(member: str, birth: str) -> dict:
    """As a provider's system asks: the patient contained, with the birth date it knows."""
    return {
        "resourceType": "CoverageEligibilityRequest",
        "contained": [
            {
                "resourceType": "Patient",
                "id": "patient",
                "identifier": [{"system": MEMBER_SYSTEM, "value": member}],
                "birthDate": birth,
            }
        ],
        "status": "active",
        "purpose": ["benefits"],
        "patient": {"reference": "#patient"},
        "created": "2026-06-15",
        "servicedDate": "2026-06-15",
        "insurer": {"display": "OpenHMO"},
    }


def claim_request(member: str, npi: str, key: str, rng: random.Random) -> dict:
    code, charge = rng.choice([("99213", "150.00"), ("99214", "210.00"), ("99212", "95.00")])
    return {
        "resourceType": "Claim",
        "identifier": [{"system": "https://bench.example/claims", "value": key}],
        "status": "active",
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "use": "claim",
        "patient": {"identifier": {"system": MEMBER_SYSTEM, "value": member}},
        "created": "2026-06-15",
        "provider": {"identifier": {"system": NPI_SYSTEM, "value": npi}},
        "priority": {"coding": [{"code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "OpenHMO"}}],
        "diagnosis": [
            {
                "sequence": 1,
                "diagnosisCodeableConcept": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "J06.9"}]
                },
            }
        ],
        "item": [
            {
                "sequence": 1,
                "productOrService": {
                    "coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": code}]
                },
                "servicedDate": f"2026-{rng.randrange(7, 12):02d}-{rng.randrange(1, 28):02d}",
                "locationCodeableConcept": {
                    "coding": [
                        {
                            "system": "https://www.cms.gov/Medicare/Coding/place-of-service-codes/"
                            "Place_of_Service_Code_Set",
                            "code": "11",
                        }
                    ]
                },
                "net": {"value": Decimal(charge), "currency": "USD"},
            }
        ],
    }


DIRECTORY_QUERIES = [
    "/fhir/PractitionerRole?specialty=207RC0000X&_count=20",
    "/fhir/Practitioner?name=smi&_count=20",
    "/fhir/PractitionerRole?network=Organization/network-openhmo-core&new-patient=newpt&_count=20",
    "/fhir/Location?near=42.3601|-71.0589|5|mi&_count=20",
    "/fhir/PractitionerRole?specialty=207Q00000X&new-patient=newpt&_count=20",
]


def run_load(
    base: str,
    token: str | None,
    requests: list[dict],
    work: Path,
    *,
    server: int | None = None,
    database: str | None = None,
    **spec,
) -> dict:
    """Run bench/load.py; its report, with the CPU time a request took of the server's
    process tree (`server`, a pid), of the database server's processes (`database`, their
    name) and of the load generator, in ms, when a server is named."""
    spec = {"base": base, "warmup": 1, "token": token, "requests": requests, **spec}
    path = work / f"load-{uuid.uuid4().hex[:8]}.json"
    path.write_text(simplejson.dumps(spec, use_decimal=True))
    before = _cpu(server, database)
    done = subprocess.run(
        [sys.executable, str(HERE.parent / "load.py"), str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.exit(f"the load generator failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if server is not None and report["sent"]:
        after = _cpu(server, database)
        for name, was, now in zip(("server", "database", "generator"), before, after, strict=True):
            report[f"{name}_cpu_ms"] = round(1000 * (now - was) / report["sent"], 2)
        if database is None:
            del report["database_cpu_ms"]  # SQLite's work is the server's own
    return report


def _cpu_text(row: dict) -> str:
    """The CPU a request took: server, database (PostgreSQL), load generator, in ms."""
    parts = [
        f"{label} {row[key]}"
        for label, key in (("server", "server_cpu_ms"), ("db", "database_cpu_ms"))
        if key in row
    ]
    return " / ".join(parts) + f" (generator {row.get('generator_cpu_ms', '-')}) ms"


def _cpu(server: int | None, database: str | None) -> tuple[float, float, float]:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (
        cpu_seconds(server) if server is not None else 0.0,
        cpu_seconds(name=database) if database else 0.0,
        children.ru_utime + children.ru_stime,
    )


# Callers of the closed loop. Claims: the server decides the claims submitted at the same
# moment in one engine run (claims.realtime), so its capacity shows only with many
# submitters at once, as a plan has (provider offices, clearinghouses).
CALLERS = {"claim": 32}


def _scenario(
    name: str, make, rate: int, base: str, token: str | None, args, work, **measured
) -> list:
    """Capacity first (closed loop, 4 callers; 32 for claims); then the open loop at the
    target rate if the server can carry it with room to spare, else at 70% of its
    capacity, so the run always ends. `measured`: run_load's server and database."""
    capacity = run_load(
        base,
        token,
        make(4000),
        work,
        **measured,
        mode="closed",
        concurrency=CALLERS.get(name, 4),
        seconds=args.probe_seconds,
    )
    capacity.update(scenario=name)
    carried = capacity["achieved_rate"]
    # An open loop needs headroom over the closed loop's rate, or its queue only grows.
    offered = rate if carried >= 1.25 * rate else max(1, int(carried * 0.7))
    opened = run_load(
        base,
        token,
        make(int(offered * (args.seconds + 2)) + 10),
        work,
        **measured,
        mode="open",
        rate=offered,
        seconds=args.seconds,
    )
    opened.update(scenario=name, target_rate=rate)
    return [capacity, opened]


def first_calls(url: str, members: list) -> list[dict]:
    """The first eligibility check after a start, without and with the start-up warming
    (api.app.warm: the ZIP table, the catalogue, the plan designs), each on a new server."""
    rows = []
    for lifespan in ("off", "on"):
        port = 18000 + random.randrange(1000)
        started = time.perf_counter()
        server = start_server(url, port, lifespan=lifespan)
        ready = time.perf_counter() - started
        try:
            base = f"http://127.0.0.1:{port}"
            headers = {"Authorization": f"Bearer {_token(base)}"}
            times = []
            for m, b, _ in members[:3]:
                sent = time.perf_counter()
                answer = httpx.post(
                    f"{base}/fhir/CoverageEligibilityRequest/$submit",
                    json=eligibility_request(m, b),
                    headers=headers,
                    timeout=60,
                )
                answer.raise_for_status()
                times.append(round((time.perf_counter() - sent) * 1000, 1))
        finally:
            stop_server(server)
        rows.append({"warm_start": lifespan == "on", "ready_s": round(ready, 2), "calls_ms": times})
    return rows


def bench_database(kind: str, args, work: Path) -> list[dict]:
    if args.url:
        url, drop = args.url, lambda: None
    else:
        url, drop = _database(kind, work)
        if args.keep:
            drop = lambda: print(f"[{kind}] kept: --url {url}", flush=True)  # noqa: E731
    try:
        if args.url:
            world = {"members": members_of(url)}
            print(f"\n[{kind}] {len(world['members']):,} members with a PCP in {url}")
        else:
            print(f"\n[{kind}] building the world ...", flush=True)
            world = build_world(url, args.families, args.practitioners, work)
            print(
                f"[{kind}] {len(world['members']):,} members with a PCP; demo in "
                f"{world['demo_seconds']} s, {args.practitioners:,} practitioners in "
                f"{world['directory_seconds']} s",
                flush=True,
            )
        if "eligibility" in args.scenarios.split(","):
            for row in first_calls(url, world["members"]):
                print(
                    f"[{kind}] after a start {'with' if row['warm_start'] else 'without'} "
                    f"warming (ready in {row['ready_s']} s): the first three eligibility "
                    f"checks {row['calls_ms']} ms",
                    flush=True,
                )
        port = 18000 + random.randrange(1000)
        server = start_server(url, port, args.workers)
        base = f"http://127.0.0.1:{port}"
        rows = []
        try:
            token = _token(base)
            rng = random.Random(7)
            members = world["members"]

            def directory(n: int) -> list[dict]:
                return [{"method": "GET", "path": q} for q in DIRECTORY_QUERIES]

            def eligibility(n: int) -> list[dict]:
                return [
                    {
                        "method": "POST",
                        "path": "/fhir/CoverageEligibilityRequest/$submit",
                        "body": eligibility_request(m, b),
                    }
                    for m, b, _ in (rng.choice(members) for _ in range(min(n, 4000)))
                ]

            def claims(n: int) -> list[dict]:
                # Every claim new: a resubmission would be answered from what is stored.
                return [
                    {
                        "method": "POST",
                        "path": "/fhir/Claim/$submit",
                        "body": claim_request(m, npi, uuid.uuid4().hex, rng),
                    }
                    for m, _, npi in (rng.choice(members) for _ in range(n))
                ]

            wanted = args.scenarios.split(",")
            scenarios = [
                (name, bearer, make, rate)
                for name, bearer, make, rate in (
                    ("directory", None, directory, args.directory_rate),
                    ("eligibility", token, eligibility, args.eligibility_rate),
                    ("claim", token, claims, args.claim_rate),
                )
                if name in wanted
            ]
            with TreeMemory() as memory:
                for name, bearer, make, rate in scenarios:
                    measured = {
                        "server": server.pid,
                        "database": "postgres" if kind == "postgresql" else None,
                    }
                    runs = _scenario(name, make, rate, base, bearer, args, work, **measured)
                    for result in runs:
                        result.update(database=kind, workers=args.workers)
                        rows.append(result)
                        print(
                            f"[{kind}] {name:12} {result['mode']:6} offered "
                            f"{result['offered_rate'] or '-'}/s achieved "
                            f"{result['achieved_rate']}/s p50 {result['p50_ms']} ms "
                            f"p99 {result['p99_ms']} ms statuses {result['statuses']}; "
                            f"CPU a request: {_cpu_text(result)}",
                            flush=True,
                        )
            for row in rows:
                row["server_peak_mib"] = round(memory.peak / 2**20)
        finally:
            stop_server(server)
        return rows
    finally:
        drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", type=int, default=400)
    parser.add_argument("--practitioners", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--probe-seconds", type=int, default=5)
    parser.add_argument("--directory-rate", type=int, default=50)
    parser.add_argument("--eligibility-rate", type=int, default=200)
    parser.add_argument("--claim-rate", type=int, default=100)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--scenarios", default="directory,eligibility,claim")
    parser.add_argument("--keep", action="store_true", help="keep the databases built")
    parser.add_argument("--url", help="bench this database (kept by --keep) as it is")
    args = parser.parse_args()
    if args.url:
        args.databases = "sqlite" if args.url.startswith("sqlite") else "postgresql"
    work = args.work or Path(tempfile.mkdtemp(prefix="openhmo-bench-api-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for kind in args.databases.split(","):
        rows += bench_database(kind.strip(), args, work)
    print(
        f"\nmachine: {_machine()}, Python {platform.python_version()}, "
        f"{args.workers} server worker(s)"
    )
    print(
        f"{'database':11} {'scenario':12} {'mode':6} {'offered/s':>9} {'achieved/s':>10} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'target':>16} {'non-2xx':>7}  CPU a request"
    )
    for row in rows:
        rate, p99 = TARGETS[row["scenario"]]
        target = f"p99<{p99:g} @{rate}/s" if rate else f"p99<{p99:g}"
        bad = sum(n for status, n in row["statuses"].items() if not str(status).startswith("2"))
        offered = row["offered_rate"] or "-"
        print(
            f"{row['database']:11} {row['scenario']:12} {row['mode']:6} {offered:>9} "
            f"{row['achieved_rate']:10} {row['p50_ms']:8} {row['p99_ms']:8} {target:>16} "
            f"{bad:7}  {_cpu_text(row)}"
        )
    (work / "bench_api.json").write_text(json.dumps(rows, indent=2))
    print(f"\nfigures: {work / 'bench_api.json'}")


if __name__ == "__main__":
    main()
