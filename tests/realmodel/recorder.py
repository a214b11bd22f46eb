"""A recording pass-through proxy: the app talks to the real server through it, and the tests
read back exactly what was sent and exactly what the server answered (its ``usage`` above
all). It changes nothing on the way, so the app still meets the real server's behaviour.
"""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

FORWARDED_HEADERS = ("content-type", "authorization", "accept")


@dataclass(frozen=True)
class Exchange:
    """One request the app made and the server's answer."""

    path: str
    request: dict[str, Any]
    status: int
    response: dict[str, Any]

    @property
    def usage(self) -> dict[str, Any]:
        return self.response.get("usage") or {}

    @property
    def cached_tokens(self) -> int:
        return (self.usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return {"_raw": raw[:2000].decode(errors="replace")}
    return data if isinstance(data, dict) else {"_json": data}


class Recorder:
    """Listens on 127.0.0.1 (any free port) and forwards every request to ``upstream``."""

    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self._host, self._port = target.hostname or "127.0.0.1", target.port or 80
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                recorder._forward(self, b"")

            def do_POST(self) -> None:  # noqa: N802
                recorder._forward(self, self.rfile.read(int(self.headers["Content-Length"] or 0)))

            def log_message(self, *args: Any) -> None:  # quiet: the exchanges are the log
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="realmodel-recorder")

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Recorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def exchanges(self, path_suffix: str = "/chat/completions") -> list[Exchange]:
        with self._lock:
            return [e for e in self._exchanges if e.path.endswith(path_suffix)]

    def clear(self) -> None:
        with self._lock:
            self._exchanges.clear()

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        headers = {k: v for k, v in handler.headers.items() if k.lower() in FORWARDED_HEADERS}
        upstream = http.client.HTTPConnection(self._host, self._port, timeout=300)
        try:
            upstream.request(handler.command, handler.path, body=body or None, headers=headers)
            reply = upstream.getresponse()
            payload = reply.read()
            status, content_type = reply.status, reply.getheader("Content-Type", "")
        finally:
            upstream.close()
        with self._lock:
            self._exchanges.append(Exchange(handler.path, _json(body), status, _json(payload)))
        handler.send_response(status)
        handler.send_header("Content-Type", content_type or "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
