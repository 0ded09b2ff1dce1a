"""`lepton dashboards install` against a local HTTP server standing in for Kibana / OpenSearch Dashboards."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from streams.tools.dashboards_install import Credentials, DashboardsError, install
from streams.tools.dashboards_saved_objects import render_ndjson


class FakeServer(ThreadingHTTPServer):
    """Answers GET /api/status like the product it plays, and records every request."""

    def __init__(self, product: str, version: str, import_reply: tuple[int, dict[str, Any]] | None = None,
                 password: str | None = None) -> None:
        self.product, self.version, self.password = product, version, password
        self.import_reply = import_reply
        self.requests: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeServer

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if self.server.product in ("osd", "kibana"):  # any other product sends no product header
            self.send_header("osd-name" if self.server.product == "osd" else "kbn-name", "node-1")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _record(self) -> dict[str, Any]:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        entry = {"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                 "body": body}
        self.server.requests.append(entry)
        return entry

    def _authorised(self) -> bool:
        import base64

        if self.server.password is None:
            return True
        expected = "Basic " + base64.b64encode(f"admin:{self.server.password}".encode()).decode()
        return self.headers.get("Authorization") == expected

    def do_GET(self) -> None:
        self._record()
        if not self._authorised():
            self._reply(401, {"statusCode": 401, "error": "Unauthorized"})
        else:
            version = {"version": {"number": self.server.version}} if self.server.version else {}
            self._reply(200, {"name": "node-1", **version})

    def do_POST(self) -> None:
        entry = self._record()
        if not self._authorised():
            self._reply(401, {"statusCode": 401, "error": "Unauthorized"})
            return
        if self.server.import_reply is not None:
            self._reply(*self.server.import_reply)
            return
        count = _uploaded(entry)[1].count(b"\n")
        self._reply(200, {"success": True, "successCount": count})


def _uploaded(entry: dict[str, Any]) -> tuple[str, bytes, str]:
    """(filename, content, content type) of the multipart file part of a recorded request."""
    raw = f"Content-Type: {entry['headers']['content-type']}\r\n\r\n".encode() + entry["body"]
    message = BytesParser(policy=HTTP).parsebytes(raw)
    (part,) = [part for part in message.iter_parts() if part.get_param("name", header="content-disposition") == "file"]
    return part.get_filename(), part.get_payload(decode=True), part.get_content_type()


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[FakeServer] = []

    def start(*args: Any, **kwargs: Any) -> FakeServer:
        server = FakeServer(*args, **kwargs)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("product", "version", "name", "xsrf"), [
    ("kibana", "8.19.3", "Kibana 8.19.3", "kbn-xsrf"),
    ("osd", "2.19.0", "OpenSearch Dashboards 2.19.0", "osd-xsrf"),
])
def test_install_posts_the_ndjson_with_the_products_xsrf_header(serve: Any, product: str, version: str, name: str,
                                                                xsrf: str) -> None:
    server = serve(product, version)
    payload = render_ndjson().encode()
    target, count = install(server.url + "/", payload, "lepton.ndjson", Credentials(api_key="k3y"))
    assert target.name == name
    assert count == payload.count(b"\n")
    status, upload = server.requests
    assert (status["method"], status["path"]) == ("GET", "/api/status")
    assert (upload["method"], upload["path"]) == ("POST", "/api/saved_objects/_import?overwrite=true")
    assert upload["headers"][xsrf] == "true"
    other = ({"kbn-xsrf", "osd-xsrf"} - {xsrf}).pop()
    assert other not in upload["headers"]
    assert upload["headers"]["authorization"] == "ApiKey k3y"
    assert upload["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert _uploaded(upload) == ("lepton.ndjson", payload, "application/ndjson")


@pytest.mark.parametrize(("version", "product"), [("2.11.1", "opensearch-dashboards"), ("8.19.3", "kibana")])
def test_product_falls_back_to_the_version_without_product_headers(serve: Any, version: str, product: str) -> None:
    server = serve("unnamed", version)
    target, _ = install(server.url, b"{}\n", "x.ndjson", Credentials())
    assert target.product == product


def test_auth_failure_names_the_fix(serve: Any) -> None:
    server = serve("kibana", "8.19.3", password="s3cret")
    with pytest.raises(DashboardsError, match=r"authentication failed .*HTTP 401.*--username/--password or --api-key"):
        install(server.url, b"{}\n", "x.ndjson", Credentials("admin", "wrong"))
    target, _ = install(server.url, b"{}\n", "x.ndjson", Credentials("admin", "s3cret"))
    assert target.product == "kibana"


def test_unreachable_url_names_the_fix() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DashboardsError, match=r"cannot reach http://127.0.0.1:\d+ .*check --url"):
        install(f"http://127.0.0.1:{port}", b"{}\n", "x.ndjson", Credentials(), timeout=3)


def test_import_errors_are_listed(serve: Any) -> None:
    reply = {"success": False, "successCount": 13, "errors": [
        {"id": "lepton-fraud-decisions", "type": "visualization", "title": "Fraud decisions",
         "error": {"type": "missing_references", "references": [{"type": "index-pattern", "id": "lepton-x"}]}},
        {"id": "lepton-dashboard-news", "type": "dashboard", "error": {"type": "unknown", "message": "bad panel"}},
    ]}
    server = serve("kibana", "8.19.3", import_reply=(200, reply))
    with pytest.raises(DashboardsError) as raised:
        install(server.url, b"{}\n", "x.ndjson", Credentials())
    message = str(raised.value)
    assert "imported 13 objects, but not these" in message
    assert ("visualization lepton-fraud-decisions (Fraud decisions): missing references index-pattern lepton-x"
            in message)
    assert "dashboard lepton-dashboard-news: unknown bad panel" in message


def test_not_a_dashboards_server(serve: Any) -> None:
    server = serve("kibana", None)  # a body without a version number, like a search engine's
    with pytest.raises(DashboardsError, match="point --url at Kibana or OpenSearch Dashboards"):
        install(server.url, b"{}\n", "x.ndjson", Credentials())
