"""The sink against the real search engine behind a proxy that answers 429 to the first bulk requests."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from sinks.search import Doc, connect
from sinks.search_sink import SearchSink
from streams.core.settings import SearchSettings, Settings


class Throttling(ThreadingHTTPServer):
    """Forwards to the real engine, except the first `reject` bulk requests, answered 429."""

    def __init__(self, upstream: str, reject: int) -> None:
        self.upstream, self.reject, self.rejected, self.bulk_requests = upstream, reject, 0, 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Throttling

    def log_message(self, *args: object) -> None:
        pass

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if "_bulk" in self.path:
            with self.server.lock:
                self.server.bulk_requests += 1
                throttle = self.server.rejected < self.server.reject
                self.server.rejected += throttle
            if throttle:
                payload = b'{"error":{"type":"es_rejected_execution_exception"},"status":429}'
                self.send_response(429)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        upstream = requests.request(self.command, self.server.upstream + self.path, data=body, headers=headers,
                                    timeout=30)
        self.send_response(upstream.status_code)
        for key in ("Content-Type", "X-Opensearch-Version", "X-Elastic-Product"):
            if key in upstream.headers:
                self.send_header(key, upstream.headers[key])
        self.send_header("Content-Length", str(len(upstream.content)))
        self.end_headers()
        self.wfile.write(upstream.content)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward


async def test_sink_rides_out_429_and_reindexing_keeps_counts(settings: Settings, unique: str) -> None:
    proxy = Throttling(settings.search.url, reject=3)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    proxied = SearchSettings(url=f"http://127.0.0.1:{proxy.server_address[1]}", index_prefix=f"it{unique}",
                             retry_initial_s=0.05, retry_max_s=0.2, bulk_max_docs=200)
    sink = SearchSink(connect(proxied), proxied)
    direct = connect(settings.search)
    index = f"it{unique}-news-2026.11"
    try:
        await sink.start()
        batch = [Doc.of(index, f"evt-{i}", {"event_id": f"evt-{i}", "score": 0.5}) for i in range(500)]
        sink.add(batch)
        assert await sink.flush() == []
        assert proxy.rejected == 3 and proxy.bulk_requests > 3
        direct.refresh(index)
        assert direct.count(index) == 500

        sink.add(batch)  # a replay: same ids
        assert await sink.flush() == []
        direct.refresh(index)
        assert direct.count(index) == 500
        mapping = requests.get(f"{settings.search.url}/{index}/_mapping", timeout=10).json()
        assert mapping[index]["mappings"]["properties"]["event_id"]["type"] == "keyword"  # template applied
    finally:
        sink.close()
        direct.delete_prefix(proxied.index_prefix)
        direct.close()
        proxy.shutdown()
