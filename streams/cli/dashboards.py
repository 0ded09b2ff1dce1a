"""`lepton dashboards install|export`: the saved objects, into Kibana or OpenSearch Dashboards or to a file."""

from __future__ import annotations

from pathlib import Path

import typer

from streams.tools.dashboards import DASHBOARDS
from streams.tools.dashboards_install import install, resolve_credentials

app = typer.Typer(help="Kibana / OpenSearch Dashboards saved objects (data views, visualizations, dashboards).",
                  no_args_is_help=True)


@app.command("install")
def install_command(
    url: str = typer.Option("http://127.0.0.1:5601", envvar="LEPTON_DASHBOARDS_URL",
                            help="Kibana or OpenSearch Dashboards base URL"),
    file: Path | None = typer.Option(None, exists=True, dir_okay=False,
                                     help="NDJSON to import (default: the shipped dashboards for the index prefix)"),
    prefix: str | None = typer.Option(None, help="data views' index prefix (default LEPTON_SEARCH__INDEX_PREFIX)"),
    username: str | None = typer.Option(None, envvar="LEPTON_DASHBOARDS_USERNAME"),
    password: str | None = typer.Option(None, envvar="LEPTON_DASHBOARDS_PASSWORD"),
    api_key: str | None = typer.Option(None, envvar="LEPTON_DASHBOARDS_API_KEY", help="sent as `ApiKey <key>`"),
    ca_certs: Path | None = typer.Option(None, envvar="LEPTON_DASHBOARDS_CA_CERTS", help="CA bundle for https"),
    timeout: float = typer.Option(30.0, min=1, help="seconds per request"),
) -> None:
    """Import the data views, visualizations and dashboards (overwriting earlier copies)."""
    if file is not None:
        payload, filename = file.read_bytes(), file.name
    else:
        from streams.core.settings import get_settings
        from streams.tools.dashboards_saved_objects import render_ndjson

        payload, filename = render_ndjson(prefix or get_settings().search.index_prefix).encode(), "lepton.ndjson"
    target, count = install(url, payload, filename, resolve_credentials(username, password, api_key), timeout,
                            ca_certs)
    typer.echo(f"imported {count} saved objects into {target.name} at {target.url}")
    if file is None:
        for dashboard in DASHBOARDS:
            typer.echo(f"  {dashboard.title}: {target.url}/app/dashboards#/view/{dashboard.id}")


@app.command("export")
def export_command(
    out: Path = typer.Option(None, help="file to write (default infra/kibana/lepton.ndjson)"),
    prefix: str = typer.Option("lepton", help="index prefix of the data views"),
) -> None:
    """Write the saved objects as NDJSON (what `install` imports), from streams/tools/dashboards.py."""
    from streams.tools.dashboards_saved_objects import NDJSON_FILE, render_ndjson

    path = out or NDJSON_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_ndjson(prefix))
    typer.echo(f"wrote {path}")


def register(root: typer.Typer) -> None:
    """Add the `dashboards` group to the root app."""
    root.add_typer(app, name="dashboards")
