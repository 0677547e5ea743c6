"""An HTTP load generator, run as its own process so the server's CPU and its own are apart.

Two modes (`python bench/load.py SPEC.json` prints one JSON report):

- "open" (default): requests start on a fixed schedule at `rate` per second whatever the
  server does, and each latency counts from its planned start, so a server that falls
  behind shows it in p99 (no coordinated omission);
- "closed": `concurrency` callers each send, wait for the answer, and send again, for
  `seconds`: the rate the server can carry (its capacity) and the latency at it.

SPEC: {"base": url, "mode": "open"|"closed", "rate": n, "concurrency": n, "seconds": n,
       "warmup": n, "token": bearer,
       "requests": [{"method": "GET", "path": "/fhir/...", "body": {...} | null}, ...]}
The requests are sent round-robin; bodies keep their Decimals as exact JSON numbers.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time

import httpx
import simplejson


def _body(body: dict | None) -> bytes | None:
    # Amounts arrive as Decimals and leave as the same JSON numbers, never through float.
    return simplejson.dumps(body, use_decimal=True).encode() if body else None


class _Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors: list[str] = []

    def add(self, seconds: float, status: int) -> None:
        self.latencies.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1


async def _send(client: httpx.AsyncClient, request: dict, body: bytes | None, tally) -> int:
    try:
        answer = await client.request(request["method"], request["path"], content=body)
        return answer.status_code
    except httpx.HTTPError as exc:
        tally.errors.append(f"{type(exc).__name__}: {exc}")
        return 599


async def _open(client, requests, bodies, spec, tally: _Tally) -> float:
    rate, seconds, warmup = spec["rate"], spec["seconds"], spec.get("warmup", 1.0)

    async def one(n: int, planned: float, record: bool) -> None:
        status = await _send(client, requests[n % len(requests)], bodies[n % len(requests)], tally)
        if record:
            tally.add(time.perf_counter() - planned, status)

    tasks = []
    start = time.perf_counter()
    for n in range(int(rate * (warmup + seconds))):
        planned = start + n / rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, planned, n >= rate * warmup)))
    await asyncio.gather(*tasks)
    return time.perf_counter() - start - warmup


async def _closed(client, requests, bodies, spec, tally: _Tally) -> float:
    counter = itertools.count()
    warm_until = time.perf_counter() + spec.get("warmup", 1.0)
    stop = warm_until + spec["seconds"]

    async def caller() -> None:
        while time.perf_counter() < stop:
            n = next(counter)
            began = time.perf_counter()
            status = await _send(
                client, requests[n % len(requests)], bodies[n % len(requests)], tally
            )
            if began >= warm_until:
                tally.add(time.perf_counter() - began, status)

    await asyncio.gather(*(caller() for _ in range(spec.get("concurrency", 4))))
    return spec["seconds"]


async def _run(spec: dict) -> dict:
    headers = {"Accept": "application/fhir+json", "Content-Type": "application/fhir+json"}
    if spec.get("token"):
        headers["Authorization"] = f"Bearer {spec['token']}"
    requests = spec["requests"]
    bodies = [_body(r.get("body")) for r in requests]
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    tally = _Tally()
    async with httpx.AsyncClient(
        base_url=spec["base"], headers=headers, limits=limits, timeout=60
    ) as client:
        mode = spec.get("mode", "open")
        run = _open if mode == "open" else _closed
        elapsed = await run(client, requests, bodies, spec, tally)
    latencies = sorted(tally.latencies)

    def pct(p: float) -> float:
        if not latencies:  # nothing answered within the run
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "mode": mode,
        "requests": len(latencies),
        "offered_rate": spec.get("rate") if mode == "open" else None,
        "achieved_rate": round(len(latencies) / elapsed, 1),
        "p50_ms": round(pct(0.50), 2),
        "p99_ms": round(pct(0.99), 2),
        "max_ms": round(latencies[-1] * 1000, 2) if latencies else None,
        "statuses": tally.statuses,
        "errors": tally.errors[:5],
    }


def main() -> None:
    with open(sys.argv[1]) as file:
        spec = simplejson.load(file, use_decimal=True)
    print(json.dumps(asyncio.run(_run(spec))))


if __name__ == "__main__":
    main()
