"""A local HTTP receiver for notification tests: what apprise's json:// and form:// send."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class NotificationReceiver:
    """Records each POST (path, headers, parsed body); answers with scripted status codes
    (then 200)."""

    def __init__(self, codes: list[int] | None = None) -> None:
        self.requests: list[dict] = []
        self.codes = list(codes or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                kind = self.headers.get("Content-Type", "")
                if "json" in kind:
                    body = json.loads(raw)
                else:
                    body = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": body})
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, scheme: str = "json", path: str = "notify") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/{path}"

    def titles(self) -> list[str]:
        return [r["body"]["title"] for r in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
