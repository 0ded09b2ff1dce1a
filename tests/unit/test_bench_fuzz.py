"""`lepton bench fuzz` at a small size: the decoding boundary never raises, and the report adds up."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from streams.cli.main import app
from streams.core.decoding import Decoder
from streams.tools.bench_fuzz import run_fuzz


def test_two_thousand_cases_raise_nothing_and_the_counts_add_up() -> None:
    result = run_fuzz(2000, seed_value=1)
    assert result["unhandled_exceptions"] == 0, result["first_failures"]
    assert result["internal_errors"] == 0
    assert result["cases"] == 2000 == result["decoded"] + result["dead_lettered"]
    assert sum(result["per_topic"].values()) == 2000 and len(result["per_topic"]) == 5
    assert result["decoded"] > 0 and result["dead_letter_types"]["unknown_topic"] > 0  # both paths exercised
    assert result["cases_per_s"] > 0


def test_an_exception_escaping_the_decoder_is_counted(monkeypatch) -> None:
    def broken(self, value, **kwargs):  # a decoder that breaks its contract
        raise RuntimeError("boom")

    monkeypatch.setattr(Decoder, "decode", broken)
    result = run_fuzz(50)
    assert result["unhandled_exceptions"] == 50 and "RuntimeError: boom" in result["first_failures"][0]


def test_the_command_prints_json_and_fails_on_unhandled_exceptions(monkeypatch) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["bench", "fuzz", "--cases", "100", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout.strip().splitlines()[-1])["cases"] == 100
    monkeypatch.setattr(Decoder, "decode", lambda self, value, **kwargs: 1 / 0)
    assert runner.invoke(app, ["bench", "fuzz", "--cases", "10", "--json"]).exit_code == 1
