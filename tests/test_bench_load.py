"""bench/load.py, the benchmarks' load generator, against the real server.

Its figures are only as good as its requests: every one it counts must have been sent
and answered, the status it reports must be the server's, and a connection the server
closed while idle must not turn into an error.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from api_support import fhir_eligibility, seed_world, serve, token

LOAD = Path(__file__).resolve().parents[1] / "bench" / "load.py"
sys.path.insert(0, str(LOAD.parent))

import load  # noqa: E402


@pytest.fixture(scope="module")
def api(module_engine):
    world = seed_world(module_engine)
    with serve(module_engine) as base:
        yield base, world


def _run(spec: dict, tmp_path: Path) -> dict:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    done = subprocess.run(
        [sys.executable, str(LOAD), str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_closed_loop_counts_the_servers_answers(api, tmp_path):
    base, world = api
    requests = [
        {
            "method": "POST",
            "path": "/fhir/CoverageEligibilityRequest/$submit",
            "body": fhir_eligibility(world.ada),
        },
        {"method": "GET", "path": "/fhir/Patient/nobody-here"},
    ]
    spec = {
        "base": base,
        "mode": "closed",
        "concurrency": 2,
        "seconds": 1,
        "warmup": 0.2,
        "token": token(base, "staff"),
        "requests": requests,
    }
    report = _run(spec, tmp_path)
    assert report["errors"] == []
    # Round robin: the eligibility answers and the 404s, one for one (give or take the
    # one each caller had in flight when the run ended).
    answered, missing = report["statuses"].get("200", 0), report["statuses"].get("404", 0)
    assert answered > 0 and missing > 0
    assert abs(answered - missing) <= 2
    assert report["requests"] == answered + missing
    assert report["p50_ms"] <= report["p99_ms"] <= report["max_ms"]


def test_open_loop_sends_on_schedule_and_a_bad_token_is_counted_as_the_server_said(api, tmp_path):
    base, world = api
    spec = {
        "base": base,
        "mode": "open",
        "rate": 40,
        "seconds": 1,
        "warmup": 0.25,
        "token": "not-a-token",
        "requests": [
            {
                "method": "POST",
                "path": "/fhir/CoverageEligibilityRequest/$submit",
                "body": fhir_eligibility(world.ada),
            }
        ],
    }
    report = _run(spec, tmp_path)
    assert report["statuses"] == {"401": 40}
    assert report["requests"] == 40
    assert report["offered_rate"] == 40


def test_a_connection_the_server_closed_while_idle_is_replaced(api):
    base, _ = api
    host, port = base.removeprefix("http://").split(":")
    message = load._message(f"{host}:{port}", {"method": "GET", "path": "/fhir/metadata"}, None)

    async def scenario() -> tuple[int, int, list[str]]:
        pool = load._Connections(host, int(port))
        tally = load._Tally()
        first = await pool.send(message, tally)
        # The kept connection ends under the pool, as when the server closes an idle
        # one between two requests; the pool still holds it, marked fresh.
        _, writer, _ = pool.free[0]
        writer.transport.abort()
        await asyncio.sleep(0.05)
        second = await pool.send(message, tally)
        pool.close()
        return first, second, tally.errors

    first, second, errors = asyncio.run(scenario())
    assert (first, second) == (200, 200)
    assert errors == []
