"""Putting the saved objects into Kibana or OpenSearch Dashboards (what `lepton dashboards install` does).

`install` asks the server what it is (GET /api/status), then posts the NDJSON file to
`/api/saved_objects/_import?overwrite=true` with the product's XSRF header (`kbn-xsrf` or `osd-xsrf`).
Re-running it overwrites the same objects (stable ids). Every failure names its fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import requests

from streams.core.errors import LeptonError

Product = Literal["kibana", "opensearch-dashboards"]
XSRF_HEADER: dict[Product, str] = {"kibana": "kbn-xsrf", "opensearch-dashboards": "osd-xsrf"}
PRODUCT_NAME: dict[Product, str] = {"kibana": "Kibana", "opensearch-dashboards": "OpenSearch Dashboards"}
AUTH_HINT = ("pass --username/--password or --api-key (or set LEPTON_DASHBOARDS_USERNAME / _PASSWORD / _API_KEY; "
             "without them LEPTON_SEARCH__USERNAME / __PASSWORD / __API_KEY are used)")


class DashboardsError(LeptonError):
    """The dashboards could not be installed: unreachable server, refused credentials, or import errors."""


@dataclass(frozen=True)
class Credentials:
    """Basic auth or an API key (Kibana and OpenSearch Dashboards accept the search engine's users)."""

    username: str | None = None
    password: str | None = None
    api_key: str | None = None

    def apply(self, session: requests.Session) -> None:
        if self.api_key:
            session.headers["Authorization"] = f"ApiKey {self.api_key}"
        elif self.username:
            session.auth = (self.username, self.password or "")


@dataclass(frozen=True)
class Target:
    """What answers at the URL."""

    url: str
    product: Product
    version: str

    @property
    def name(self) -> str:
        return f"{PRODUCT_NAME[self.product]} {self.version}"


def _refused(url: str, response: requests.Response) -> DashboardsError | None:
    """An error naming the fix for 401/403, else None."""
    if response.status_code == 401:
        return DashboardsError(f"authentication failed at {url} (HTTP 401): {AUTH_HINT}")
    if response.status_code == 403:
        return DashboardsError(f"the user is not allowed to manage saved objects at {url} (HTTP 403): use a user or "
                               "API key with the kibana_admin role (Kibana) or saved-object write access (OpenSearch)")
    return None


def detect(session: requests.Session, url: str, timeout: float) -> Target:
    """Kibana or OpenSearch Dashboards, by the response headers of GET /api/status, else by the version number."""
    try:
        response = session.get(f"{url}/api/status", timeout=timeout)
    except requests.RequestException as error:
        raise DashboardsError(f"cannot reach {url} ({type(error).__name__}: {error}); check --url "
                              "(LEPTON_DASHBOARDS_URL) and that Kibana / OpenSearch Dashboards is running") from None
    if (refused := _refused(url, response)) is not None:
        raise refused
    try:
        body = response.json()
        version = str(body["version"]["number"])
    except (ValueError, KeyError, TypeError):
        raise DashboardsError(
            f"{url}/api/status answered HTTP {response.status_code} without a Kibana status (is {url} the search "
            "engine instead? point --url at Kibana or OpenSearch Dashboards, usually port 5601; if it is still "
            "starting, wait and retry)") from None
    headers = {key.lower() for key in response.headers}
    if "osd-name" in headers or "osd-version" in headers:
        product: Product = "opensearch-dashboards"
    elif "kbn-name" in headers or "kbn-version" in headers:
        product = "kibana"
    else:  # OpenSearch Dashboards is 1.x-3.x, Kibana 7.x and later
        product = "opensearch-dashboards" if int(version.split(".")[0]) < 7 else "kibana"
    return Target(url, product, version)


def _describe(error: dict[str, Any]) -> str:
    """One import error in words: which object, and why."""
    what = f"{error.get('type', '?')} {error.get('id', '?')}"
    if error.get("title"):
        what += f" ({error['title']})"
    detail = error.get("error") or {}
    kind = detail.get("type", "unknown")
    if kind == "missing_references":
        missing = ", ".join(f"{ref.get('type')} {ref.get('id')}" for ref in detail.get("references", []))
        return f"{what}: missing references {missing}"
    return f"{what}: {kind} {detail.get('message') or detail.get('statusCode') or ''}".rstrip()


def import_objects(session: requests.Session, target: Target, payload: bytes, filename: str,
                   timeout: float) -> int:
    """Post the NDJSON to the import API (overwrite); returns how many objects were imported."""
    try:
        response = session.post(f"{target.url}/api/saved_objects/_import", params={"overwrite": "true"},
                                headers={XSRF_HEADER[target.product]: "true"},
                                files={"file": (filename, payload, "application/ndjson")}, timeout=timeout)
    except requests.RequestException as error:
        raise DashboardsError(f"the import request to {target.url} failed ({type(error).__name__}: {error}); "
                              "check the server is up and retry") from None
    if (refused := _refused(target.url, response)) is not None:
        raise refused
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        message = body.get("message") or response.text[:300]
        raise DashboardsError(f"{target.name} refused the import (HTTP {response.status_code}): {message}")
    if not body.get("success", False):
        errors = "\n  ".join(_describe(error) for error in body.get("errors", [])) or "no details given"
        raise DashboardsError(f"{target.name} imported {body.get('successCount', 0)} objects, but not these:\n  "
                              f"{errors}\nFix the file (or import the data views it references) and run again.")
    return int(body.get("successCount", 0))


def install(url: str, payload: bytes, filename: str, credentials: Credentials, timeout: float = 30.0,
            ca_certs: Path | None = None) -> tuple[Target, int]:
    """Detect the product at `url` and import the saved objects; returns the target and the imported count."""
    url = url.rstrip("/")
    with requests.Session() as session:
        credentials.apply(session)
        if ca_certs:
            session.verify = str(ca_certs)
        target = detect(session, url, timeout)
        return target, import_objects(session, target, payload, filename, timeout)


def resolve_credentials(username: str | None, password: str | None, api_key: str | None) -> Credentials:
    """Explicit options first, else the search engine's credentials from the settings."""
    if password and not username:
        raise DashboardsError("--password needs --username (LEPTON_DASHBOARDS_USERNAME)")
    if username or api_key:
        return Credentials(username, password, api_key)
    from streams.core.settings import get_settings

    search = get_settings().search
    return Credentials(search.username, search.password.get_secret_value() if search.password else None,
                       search.api_key.get_secret_value() if search.api_key else None)
