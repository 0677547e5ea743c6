"""An open-loop HTTP load generator: requests start on a fixed schedule, whatever the server does.

A closed loop (send, wait, send) slows down with the server and hides its queueing
(coordinated omission); here each request has its planned start time and its latency is
measured from that time, so a server that falls behind shows it in p99. Runs as its own
process (`python bench/load.py SPEC.json`), so the server's and the generator's CPU are
apart; prints one JSON report.

SPEC: {"base": url, "rate": requests/s, "seconds": n, "warmup": n, "token": bearer,
       "requests": [{"method": "GET", "path": "/fhir/...", "body": {...} | null}, ...]}
The requests are sent round-robin.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx
import simplejson


def _body(body: dict | None) -> bytes | None:
    # Amounts arrive as Decimals and leave as the same JSON numbers, never through float.
    return simplejson.dumps(body, use_decimal=True).encode() if body else None


async def _run(spec: dict) -> dict:
    rate, seconds, warmup = spec["rate"], spec["seconds"], spec.get("warmup", 1.0)
    headers = {"Accept": "application/fhir+json"}
    if spec.get("token"):
        headers["Authorization"] = f"Bearer {spec['token']}"
    requests = spec["requests"]
    headers["Content-Type"] = "application/fhir+json"
    bodies = [
        simplejson.dumps(r["body"], use_decimal=True).encode() if r.get("body") else None
        for r in requests
    ]
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    async with httpx.AsyncClient(
        base_url=spec["base"], headers=headers, limits=limits, timeout=30
    ) as client:

        async def one(n: int, planned: float, record: bool) -> None:
            request = requests[n % len(requests)]
            try:
                answer = await client.request(
                    request["method"], request["path"], content=bodies[n % len(requests)]
                )
                status = answer.status_code
            except httpx.HTTPError as exc:
                status = 599
                errors.append(f"{type(exc).__name__}: {exc}")
            if record:
                latencies.append(time.perf_counter() - planned)
                statuses[status] = statuses.get(status, 0) + 1

        tasks = []
        start = time.perf_counter()
        total = int(rate * (warmup + seconds))
        for n in range(total):
            planned = start + n / rate
            delay = planned - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n, planned, n >= rate * warmup)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "offered_rate": rate,
        "achieved_rate": round(total / elapsed, 1),
        "p50_ms": round(pct(0.50), 2),
        "p99_ms": round(pct(0.99), 2),
        "max_ms": round(latencies[-1] * 1000, 2),
        "statuses": statuses,
        "errors": errors[:5],
    }


def main() -> None:
    with open(sys.argv[1]) as file:
        spec = simplejson.load(file, use_decimal=True)
    print(json.dumps(asyncio.run(_run(spec))))


if __name__ == "__main__":
    main()
