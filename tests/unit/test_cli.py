"""CLI parsing: commands exist, options are validated, errors are one readable line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from infra.local import stack
from streams.cli.main import app
from streams.core.errors import LeptonError
from streams.core.settings import Settings

runner = CliRunner()


def test_help_lists_the_stack_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("up", "down", "status", "topics"):
        assert command in result.output


def test_topics_group_has_create_and_list() -> None:
    result = runner.invoke(app, ["topics", "--help"])
    assert result.exit_code == 0
    assert "create" in result.output and "list" in result.output


def test_unknown_command_fails() -> None:
    assert runner.invoke(app, ["launch"]).exit_code != 0


def test_only_option_selects_services() -> None:
    chosen = stack.services(Settings(), ["search", "kafka"])
    assert [s.name for s in chosen] == ["kafka", "search"]  # start order is kept


def test_only_option_rejects_unknown_service() -> None:
    with pytest.raises(LeptonError, match="unknown service"):
        stack.services(Settings(), ["zookeeper"])


def test_main_prints_lepton_errors_without_traceback(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from streams.cli import main as cli

    monkeypatch.setattr("sys.argv", ["lepton", "up", "--only", "zookeeper"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "unknown service" in err and "Traceback" not in err
