"""A closed-loop HTTP/1.1 load generator: C requests in flight over M keep-alive
connections, exactly N requests.

``python -m bench.loadgen URL --body FILE -H "Name: value" -n N -c C [-m M] --out FILE``

Why not a stock tool: ApacheBench speaks HTTP/1.0, and uvicorn closes an HTTP/1.0
connection after each response, so ``ab -k`` opens a new TCP connection per request (it
reports "Keep-Alive requests: 0") — not what an API client does. wrk keeps connections
alive but runs for a duration, not a count, so the requests it cut off at the end cannot be
told from the ones it counted, and the bench's check (runs created == 2xx answers) breaks.

C workers each send a request, wait for its answer, and send the next (a closed loop, no
pipelining), each time on the connection that has been idle longest among M ≥ C open
ones, all opened before the clock starts.

A multi-process server (uvicorn ``--workers N``) shares one listening socket, a keep-alive
connection stays with the process that accepted it, and the kernel hands most new
connections to the same process (the first one in the socket's wait queue) — measured
here: 32 connections 32/0, 29/3 or 16/16 from one try to the next. A benchmark would then
measure one process, by luck. With ``--processes N`` the generator does what a load
balancer does: it asks ``ss`` which server process holds each connection, opens more until
each of the N holds M/N, and keeps exactly M/N on each, so the requests (taken from the
connections in turn) are spread evenly.

Requests are prebuilt bytes and responses are parsed only as far as the status line,
``Content-Length`` and ``Connection``, on uvloop when installed, so one process sustains
far more than the server under test; its own CPU time is reported to show it. A
connection the server closes is reopened; an error or a timeout counts as status 0.
Writes JSON: per request its start (s since the first), latency (µs) and status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

TIMEOUT_S = 30.0


@dataclass
class Connection:
    host: str
    port: int
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    opened: int = 0

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.opened += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Budget:
    """Requests left to send, shared by the workers (one event loop: no lock)."""

    def __init__(self, count: int) -> None:
        self.left = count

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def build_request(url: str, body: bytes, headers: list[str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    lines = [f"POST {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
             f"Host: {host}:{port}", f"Content-Length: {len(body)}",
             "Connection: keep-alive", *headers]
    return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Status code, and whether the server keeps the connection open."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, keep, chunked = 0, True, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            keep = False
        elif name == "transfer-encoding":
            chunked = "chunked" in value.lower()
    if chunked:
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)  # the chunk and its CRLF
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, then the end
            pass
    elif length:
        await reader.readexactly(length)
    return status, keep


async def worker(idle: asyncio.Queue[Connection], request: bytes, budget: Budget,
                 out: list[tuple[float, int, int]]) -> None:
    while budget.take():
        conn = idle.get_nowait()  # never empty: at most C of M ≥ C connections are busy
        started = time.perf_counter()
        status = 0
        try:
            if conn.writer is None:
                await conn.open()
            assert conn.writer is not None and conn.reader is not None
            conn.writer.write(request)
            status, keep = await asyncio.wait_for(read_response(conn.reader), TIMEOUT_S)
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            keep = False
        out.append((started, int((time.perf_counter() - started) * 1e6), status))
        if not keep:
            conn.close()
        idle.put_nowait(conn)  # to the back: the longest idle one is used next


def server_pids(port: int) -> dict[int, int]:
    """Client port → pid of the server process holding the other end of each established
    connection to ``port`` (``ss`` from iproute2, Linux)."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    owners = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 5 and "pid=" in fields[4]:
            pid = int(fields[4].split("pid=", 1)[1].split(",", 1)[0])
            owners[int(fields[3].rsplit(":", 1)[1])] = pid
    return owners


async def spread(host: str, port: int, count: int, processes: int,
                 tries: int = 20) -> tuple[list[Connection], dict[int, int]]:
    """``count`` open connections, ``count // processes`` held by each server process."""
    want = count // processes
    held: dict[int, list[Connection]] = {}
    for _ in range(tries):
        batch = [Connection(host, port) for _ in range(count)]
        await asyncio.gather(*(conn.open() for conn in batch))  # a burst: mixes best
        await asyncio.sleep(0.05)  # let the server processes accept them
        owners = server_pids(port)
        for conn in batch:
            assert conn.writer is not None
            pid = owners.get(conn.writer.get_extra_info("sockname")[1])
            group = held.setdefault(pid, []) if pid is not None else None
            if group is not None and len(group) < want:
                group.append(conn)
            else:
                conn.close()
        full = [pid for pid, group in held.items() if len(group) >= want]
        if len(full) >= processes:
            chosen = full[:processes]
            for pid in set(held) - set(chosen):
                for conn in held[pid]:
                    conn.close()
            # interleaved, so that taking connections in turn alternates processes
            pool = [held[pid][i] for i in range(want) for pid in chosen]
            return pool, {pid: want for pid in chosen}
    raise RuntimeError(f"could not spread {count} connections over {processes} server "
                       f"processes in {tries} tries: {[len(g) for g in held.values()]}")


async def load(url: str, body: bytes, headers: list[str], count: int, concurrency: int,
               connections: int = 0, processes: int = 1) -> dict[str, object]:
    host, port, request = build_request(url, body, headers)
    size = max(connections, concurrency)
    per_process: dict[int, int] = {}
    pool: list[Connection] = []
    if processes > 1 and shutil.which("ss"):
        size += -size % processes
        pool, per_process = await spread(host, port, size, processes)
    else:  # one process, or no ``ss`` to tell them apart (the report then says so)
        pool = [Connection(host, port) for _ in range(size)]
        await asyncio.gather(*(conn.open() for conn in pool))
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for conn in pool:
        idle.put_nowait(conn)
    budget = Budget(count)
    out: list[tuple[float, int, int]] = []
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    await asyncio.gather(*(worker(idle, request, budget, out) for _ in range(concurrency)))
    seconds = time.perf_counter() - began
    used = resource.getrusage(resource.RUSAGE_SELF)
    for conn in pool:
        conn.close()
    out.sort()
    return {
        "seconds": seconds,
        "cpu_seconds": (used.ru_utime - cpu.ru_utime) + (used.ru_stime - cpu.ru_stime),
        "connections_opened": sum(conn.opened for conn in pool),
        "connections_per_server_process": sorted(per_process.values()),
        "start_s": [round(s - began, 6) for s, _, _ in out],
        "latency_us": [lat for _, lat, _ in out],
        "status": [code for _, _, code in out],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--body", type=Path, required=True, help="file with the POST body")
    parser.add_argument("-H", dest="headers", action="append", default=[],
                        help="a header line, repeatable")
    parser.add_argument("-n", type=int, required=True, help="requests in all")
    parser.add_argument("-c", type=int, required=True, help="requests in flight")
    parser.add_argument("-m", type=int, default=0, help="connections (default: -c)")
    parser.add_argument("--processes", type=int, default=1,
                        help="server processes to spread the connections over evenly")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    coro = load(args.url, args.body.read_bytes(), args.headers, args.n, args.c, args.m,
                args.processes)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(coro)
    else:
        result = uvloop.run(coro)
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
