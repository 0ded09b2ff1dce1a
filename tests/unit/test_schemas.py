"""The checked-in JSON Schema files match the models (run `lepton schemas export` after changing a model)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from streams.tools import schemas


def test_checked_in_schemas_match_the_models() -> None:
    assert schemas.stale_files() == [], "run `lepton schemas export` and commit infra/schemas/"


def test_export_writes_valid_json_for_every_contract(tmp_path: Path) -> None:
    paths = schemas.export(tmp_path)
    assert {path.stem for path in paths} == set(schemas.CONTRACTS)
    transaction = json.loads((tmp_path / "transaction.json").read_text())
    assert "card_number" in transaction["properties"] and "card_token" not in transaction["required"]
    assert schemas.stale_files(tmp_path) == []


def test_check_flag_reports_stale_files(tmp_path: Path) -> None:
    from streams.cli.main import app

    result = CliRunner().invoke(app, ["schemas", "export", "--out", str(tmp_path), "--check"])
    assert result.exit_code == 1 and "out of date" in result.output
    assert CliRunner().invoke(app, ["schemas", "export", "--out", str(tmp_path)]).exit_code == 0
    assert CliRunner().invoke(app, ["schemas", "export", "--out", str(tmp_path), "--check"]).exit_code == 0
