"""The search client settings over TLS with a CA bundle, basic auth or an API key, against the real engine
behind a TLS-terminating, credential-checking proxy (the local OpenSearch runs without its security plugin)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sinks.search import Doc, connect
from sinks.search_sink import SearchSink
from streams.core.errors import SearchError
from streams.core.settings import SearchSettings, Settings
from tests.integration.auth_proxy import AuthProxy
from tests.integration.tls import ServerTls, make_ca, make_server_tls

PASSWORD = "search-pw-5f3a9c"
API_KEY = "bGVwdG9uOmFwaS1rZXktN2Q0ZQ=="


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> ServerTls:
    return make_server_tls(tmp_path_factory.mktemp("search-tls"))


@pytest.fixture
def proxy(settings: Settings, tls: ServerTls) -> Iterator[AuthProxy]:
    with AuthProxy(settings.search.url, tls.cert, tls.key, user="lepton", password=PASSWORD,
                   api_key=API_KEY) as server:
        yield server


def secured(proxy: AuthProxy, ca: Path, unique: str, **credentials: object) -> SearchSettings:
    return SearchSettings(url=proxy.url, ca_certs=ca, index_prefix=f"ittls{unique}", **credentials)


async def test_basic_auth_over_tls_writes_through_the_sink(proxy: AuthProxy, tls: ServerTls, settings: Settings,
                                                           unique: str) -> None:
    s = secured(proxy, tls.ca_cert, unique, username="lepton", password=PASSWORD)
    client = connect(s)
    index = f"ittls{unique}-news-2026.11"
    sink = SearchSink(client, s)
    try:
        assert client.distribution == "opensearch"
        await sink.start()
        sink.add([Doc.of(index, f"evt-{i}", {"event_id": f"evt-{i}", "score": 0.25}) for i in range(20)])
        assert await sink.flush() == []
        client.refresh(index)
        assert client.count(index) == 20
        assert proxy.outcomes["refused"] == 0 and proxy.outcomes["forwarded"] >= 4  # every call authenticated
    finally:
        connect(settings.search).delete_prefix(s.index_prefix)
        sink.close()


def test_api_key_over_tls_is_sent_by_the_client(proxy: AuthProxy, tls: ServerTls, unique: str) -> None:
    client = connect(secured(proxy, tls.ca_cert, unique, api_key=API_KEY))
    try:
        assert client.count(f"ittls{unique}-none") == 0  # a request through the OpenSearch client, not the probe
        assert proxy.outcomes["refused"] == 0 and proxy.outcomes["forwarded"] == 2
    finally:
        client.close()


def test_a_wrong_ca_fails_naming_the_ca_setting(proxy: AuthProxy, tmp_path: Path, unique: str) -> None:
    other_ca, _ = make_ca(tmp_path, "some-other-ca")
    with pytest.raises(SearchError, match="LEPTON_SEARCH__CA_CERTS") as failure:
        connect(secured(proxy, other_ca, unique, username="lepton", password=PASSWORD))
    assert "certificate verify failed" in str(failure.value)
    assert proxy.outcomes["forwarded"] == 0


def test_a_wrong_password_fails_naming_the_password_setting(proxy: AuthProxy, tls: ServerTls, unique: str) -> None:
    with pytest.raises(SearchError, match="LEPTON_SEARCH__PASSWORD") as failure:
        connect(secured(proxy, tls.ca_cert, unique, username="lepton", password="not-the-password"))
    assert "401" in str(failure.value) and "not-the-password" not in str(failure.value)
    with pytest.raises(SearchError, match="LEPTON_SEARCH__API_KEY"):
        connect(secured(proxy, tls.ca_cert, unique, api_key="d3Jvbmc="))
    assert proxy.outcomes["forwarded"] == 0 and proxy.outcomes["refused"] == 2


def test_no_credentials_at_all_says_which_to_set(proxy: AuthProxy, tls: ServerTls, unique: str) -> None:
    with pytest.raises(SearchError, match="LEPTON_SEARCH__USERNAME and LEPTON_SEARCH__PASSWORD, or"):
        connect(secured(proxy, tls.ca_cert, unique))
