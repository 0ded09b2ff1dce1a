"""A TLS-terminating, credential-checking reverse proxy in front of the local search engine (which has no security
plugin), so tests can exercise the clients' CA bundle, basic auth and API key settings against a real engine."""

from __future__ import annotations

import base64
import ssl
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests


class AuthProxy(ThreadingHTTPServer):
    """HTTPS on 127.0.0.1:<free port>; forwards requests with the right Authorization header, answers 401 otherwise."""

    daemon_threads = True

    def __init__(self, upstream: str, cert: Path, key: Path, *, user: str, password: str, api_key: str) -> None:
        self.upstream = upstream
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.accepted = {f"Basic {basic}", f"ApiKey {api_key}"}
        self.outcomes: Counter[str] = Counter()  # "forwarded" / "refused"
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> AuthProxy:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.shutdown()
        self.server_close()

    def count(self, outcome: str) -> None:
        with self.lock:
            self.outcomes[outcome] += 1


class _Handler(BaseHTTPRequestHandler):
    server: AuthProxy

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Authorization") not in self.server.accepted:
            self.server.count("refused")
            self._reply(401, b'{"error":"unauthorized","status":401}',
                        {"Content-Type": "application/json", "WWW-Authenticate": 'Basic realm="lepton-test"'})
            return
        self.server.count("forwarded")
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "content-length", "authorization")}
        upstream = requests.request(self.command, self.server.upstream + self.path, data=body, headers=headers,
                                    timeout=30)
        passed = {key: upstream.headers[key] for key in ("Content-Type", "X-Opensearch-Version", "X-Elastic-Product")
                  if key in upstream.headers}
        self._reply(upstream.status_code, upstream.content, passed)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward
