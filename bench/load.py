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

On a machine of two cores the generator shares the cores with the server and its
database, so it is kept cheap: each request's bytes are made once, sent on a pool of
keep-alive HTTP/1.1 connections by asyncio streams on uvloop, and only the status line
and the body's length are read from an answer (httpx cost ~1.4 ms of CPU a request,
a fifth of the server's own; this costs ~0.2 ms).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from urllib.parse import urlsplit

import simplejson
import uvloop


def _body(body: dict | None) -> bytes:
    # Amounts arrive as Decimals and leave as the same JSON numbers, never through float.
    return simplejson.dumps(body, use_decimal=True).encode() if body else b""


def _message(host: str, request: dict, token: str | None) -> bytes:
    """The whole HTTP/1.1 request, made once and sent as often as it is asked for."""
    body = _body(request.get("body"))
    head = [
        f"{request['method']} {request['path']} HTTP/1.1",
        f"Host: {host}",
        "Accept: application/fhir+json",
        "Content-Type: application/fhir+json",
        f"Content-Length: {len(body)}",
    ]
    if token:
        head.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class _Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors: list[str] = []

    def add(self, seconds: float, status: int) -> None:
        self.latencies.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1


class _Connections:
    """Keep-alive connections to one server: a free one is reused, else one is opened.

    uvicorn closes a connection idle for 5 s, so one idle for 4 s is not reused; one
    closed by the server anyway before any answer came is tried again on a new one, as
    HTTP clients do (the server read nothing of the request).
    """

    IDLE_S = 4.0

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.free: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.sent = 0  # warm-up included: what the server's CPU time was spent on

    async def send(self, message: bytes, tally: _Tally) -> int:
        self.sent += 1
        reused = None
        while self.free:
            reader, writer, since = self.free.pop()
            if time.perf_counter() - since < self.IDLE_S:
                reused = (reader, writer)
                break
            writer.close()
        if reused is not None:
            try:
                return await self._exchange(reused, message)
            except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
                reused[1].close()
                if getattr(exc, "partial", b"") != b"":
                    tally.errors.append(f"{type(exc).__name__}: {exc}")
                    return 599
        try:
            connection = await asyncio.open_connection(self.host, self.port)
            return await self._exchange(connection, message)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            tally.errors.append(f"{type(exc).__name__}: {exc}")
            return 599

    async def _exchange(self, connection, message: bytes) -> int:
        reader, writer = connection
        writer.write(message)
        status, reusable = await _answer(reader)
        if reusable:
            self.free.append((reader, writer, time.perf_counter()))
        else:
            writer.close()
        return status

    def close(self) -> None:
        for _, writer, _ in self.free:
            writer.close()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one answer: its status, and whether the connection may be used again."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length, chunked, close = 0, False, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            close = b"close" in value.lower()
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status, not close


async def _open(pool, messages, spec, tally: _Tally) -> float:
    rate, seconds, warmup = spec["rate"], spec["seconds"], spec.get("warmup", 1.0)

    async def one(n: int, planned: float, record: bool) -> None:
        status = await pool.send(messages[n % len(messages)], tally)
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


async def _closed(pool, messages, spec, tally: _Tally) -> float:
    counter = itertools.count()
    warm_until = time.perf_counter() + spec.get("warmup", 1.0)
    stop = warm_until + spec["seconds"]

    async def caller() -> None:
        while time.perf_counter() < stop:
            n = next(counter)
            began = time.perf_counter()
            status = await pool.send(messages[n % len(messages)], tally)
            if began >= warm_until:
                tally.add(time.perf_counter() - began, status)

    await asyncio.gather(*(caller() for _ in range(spec.get("concurrency", 4))))
    return spec["seconds"]


async def _run(spec: dict) -> dict:
    # The spec is read with decimals kept exact (for the bodies); times and rates are floats.
    spec = {**spec, **{k: float(spec[k]) for k in ("rate", "seconds", "warmup") if k in spec}}
    base = urlsplit(spec["base"])
    host = base.netloc
    messages = [_message(host, r, spec.get("token")) for r in spec["requests"]]
    pool = _Connections(base.hostname, base.port or 80)
    tally = _Tally()
    mode = spec.get("mode", "open")
    run = _open if mode == "open" else _closed
    try:
        elapsed = await run(pool, messages, spec, tally)
    finally:
        pool.close()
    latencies = sorted(tally.latencies)

    def pct(p: float) -> float:
        if not latencies:  # nothing answered within the run
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "mode": mode,
        "requests": len(latencies),
        "sent": pool.sent,
        "offered_rate": _number(spec["rate"]) if mode == "open" else None,
        "achieved_rate": round(len(latencies) / elapsed, 1),
        "p50_ms": round(pct(0.50), 2),
        "p99_ms": round(pct(0.99), 2),
        "max_ms": round(latencies[-1] * 1000, 2) if latencies else None,
        "statuses": tally.statuses,
        "errors": tally.errors[:5],
    }


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def main() -> None:
    with open(sys.argv[1]) as file:
        spec = simplejson.load(file, use_decimal=True)
    print(json.dumps(uvloop.run(_run(spec))))


if __name__ == "__main__":
    main()
