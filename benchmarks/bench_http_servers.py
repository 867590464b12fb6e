"""Which HTTP server library the OTLP receivers use: the measurements behind the choice.

    python benchmarks/bench_http_servers.py                  # every installed candidate
    python benchmarks/bench_http_servers.py waitress uvicorn-h11

Each candidate serves the same tiny app (read the whole body, cap it, answer 200) in its own
process on 127.0.0.1, configured with the same limits (1 MiB body cap for the cap checks,
2 s client timeout). This process is the client and measures:

* ``req/s``: keep-alive POSTs of an 80 KB protobuf-sized body (about 100 LLM spans), two
  client connections, 3 s;
* ``KB/idle conn``: server RSS growth per idle keep-alive connection (300 of them);
* ``slowloris``: with 100 clients stalled mid-headers and 100 stalled mid-body, is a normal
  request still answered, and how many stalled connections the server closed within 10 s;
* ``chunked cap``: a chunked upload that never ends: the status the server answers and how
  many MB it read before answering (an early 413 is what we want);
* ``expect``: what ``Expect: 100-continue`` gets for an 80 KB and a 50 MB ``Content-Length``.

Needs the candidates installed (``pip install waitress uvicorn h11 httptools hypercorn aiohttp``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

CAP = 1 << 20
TIMEOUT_S = 2
BODY = os.urandom(80_000)
CANDIDATES = ("waitress", "uvicorn-h11", "uvicorn-httptools", "hypercorn", "aiohttp")


# --- the servers (run in a child process) ------------------------------------------------------


def serve(name: str, port: int) -> None:
    if name == "waitress":
        from waitress.server import create_server

        def wsgi(environ, start_response):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
            return [b"ok" if body is not None else b"no"]

        server = create_server(wsgi, host="127.0.0.1", port=port, threads=4, channel_timeout=TIMEOUT_S,
                               cleanup_interval=1, max_request_body_size=CAP + 1,
                               connection_limit=1000)
        print("ready", flush=True)
        server.run()
        return

    async def asgi(scope, receive, send):
        if scope["type"] != "http":
            return
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
            if size > CAP:
                await send({"type": "http.response.start", "status": 413, "headers": [(b"content-length", b"0")]})
                await send({"type": "http.response.body", "body": b""})
                return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    if name.startswith("uvicorn"):
        import uvicorn

        print("ready", flush=True)
        uvicorn.run(asgi, host="127.0.0.1", port=port, http=name.split("-")[1], log_level="error",
                    timeout_keep_alive=TIMEOUT_S, access_log=False)
    elif name == "hypercorn":
        import asyncio

        from hypercorn.asyncio import serve as hypercorn_serve
        from hypercorn.config import Config

        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        config.keep_alive_timeout = TIMEOUT_S
        config.read_timeout = TIMEOUT_S
        config.loglevel = "ERROR"
        print("ready", flush=True)
        asyncio.run(hypercorn_serve(asgi, config))
    elif name == "aiohttp":
        from aiohttp import web

        async def handler(request):
            await request.read()
            return web.Response(text="ok")

        app = web.Application(client_max_size=CAP)
        app.router.add_post("/v1/traces", handler)
        print("ready", flush=True)
        web.run_app(app, host="127.0.0.1", port=port, print=None, keepalive_timeout=TIMEOUT_S)


# --- the measurements (this process) -----------------------------------------------------------


def request(body: bytes, extra: bytes = b"") -> bytes:
    return (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n" + extra
            + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def read_response(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(rest) < length:
        rest += conn.recv(65536)
    return head


def throughput(port: int, seconds: float = 3.0) -> float:
    done = [0, 0]
    end = time.monotonic() + seconds

    def client(i: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            message = request(BODY)
            while time.monotonic() < end:
                conn.sendall(message)
                assert read_response(conn).startswith(b"HTTP/1.1 200"), "not 200"
                done[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / seconds


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def idle_memory(port: int, pid: int, n: int = 300) -> float:
    before = rss_kb(pid)
    conns = []
    for _ in range(n):
        conn = socket.create_connection(("127.0.0.1", port))
        conn.sendall(request(b"x"))
        read_response(conn)
        conns.append(conn)
    time.sleep(0.3)
    grown = rss_kb(pid) - before
    for conn in conns:
        conn.close()
    return grown / n


def slowloris(port: int) -> tuple[str, str]:
    stalled = []
    for i in range(200):
        conn = socket.create_connection(("127.0.0.1", port))
        if i % 2:
            conn.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n")  # headers never finish
        else:
            conn.sendall(request(BODY)[:500])  # body never finishes
        stalled.append(conn)
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(request(BODY))
            served = f"yes, {time.monotonic() - started:.2f} s" if read_response(conn).startswith(
                b"HTTP/1.1 200") else "error"
    except OSError:
        served = "NO (timed out)"
    deadline = time.monotonic() + 10
    closed = set()
    while time.monotonic() < deadline and len(closed) < len(stalled):
        for i, conn in enumerate(stalled):
            if i in closed:
                continue
            conn.setblocking(False)
            try:
                data = conn.recv(4096)
                closed.add(i) if not data or data.startswith(b"HTTP/1.1 4") else None
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
        time.sleep(0.2)
    for conn in stalled:
        conn.close()
    return served, f"{len(closed)}/{len(stalled)} closed"


def chunked_cap(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        piece = b"%x\r\n" % 65536 + b"\0" * 65536 + b"\r\n"
        sent = 0
        conn.setblocking(False)
        answer = b""
        try:
            while sent < 64 * CAP:
                try:
                    answer += conn.recv(4096)
                    if answer:
                        break
                except BlockingIOError:
                    pass
                conn.setblocking(True)
                conn.sendall(piece)
                conn.setblocking(False)
                sent += 65536
        except OSError:
            pass
        conn.setblocking(True)
        conn.settimeout(5)
        try:
            answer = answer or conn.recv(4096)
        except OSError:
            pass
        status = answer.split(b"\r\n", 1)[0].decode(errors="replace")[9:12] or "reset"
        return f"{status} after {sent / (1 << 20):.1f} MB"


def expect_continue(port: int, length: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        conn.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                     b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % length)
        try:
            return conn.recv(4096).split(b"\r\n", 1)[0].decode()[9:12] or "closed"
        except OSError:
            return "nothing"


def measure(name: str) -> list[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = subprocess.Popen([sys.executable, __file__, "--serve", name, str(port)], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()  # type: ignore[union-attr]
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        rate = throughput(port)
        memory = idle_memory(port, child.pid)
        served, closed = slowloris(port)
        return [name, f"{rate:,.0f}", f"{memory:.1f}", served, closed, chunked_cap(port),
                f"{expect_continue(port, len(BODY))} / {expect_continue(port, 50 << 20)}"]
    finally:
        child.terminate()
        child.wait(10)


def main(names: list[str]) -> None:
    headers = ["server", "req/s (80 KB)", "KB/idle conn", "served during slowloris",
               "stalled closed in 10 s", "endless chunked body", "expect 80 KB / 50 MB"]
    rows = [headers]
    for name in names:
        try:
            rows.append(measure(name))
        except Exception as exc:  # a candidate that is missing or breaks: say so, go on
            rows.append([name, f"failed: {exc!r}"[:60]] + [""] * (len(headers) - 2))
        print(" | ".join(rows[-1]), flush=True)
    print()
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main(sys.argv[1:] or list(CANDIDATES))
