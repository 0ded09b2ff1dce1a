"""The operations guide's configuration reference is the generator's output, and it covers every setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.core.errors import LeptonError
from streams.core.settings import Settings
from streams.tools.config_reference import REFERENCE_DOC, reference_block, render, sections, write_reference


def test_docs_block_equals_the_generated_reference() -> None:
    assert reference_block(REFERENCE_DOC.read_text()) == render(), (
        "run `lepton config reference --write` and commit docs/operations.md")


def test_every_setting_is_listed_with_a_description(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [row for _, _, rows in sections() for row in rows]
    assert all(row.description for row in rows), [row.variable for row in rows if not row.description]
    # Each listed variable really is read by Settings: set it to a changed default and see it arrive.
    monkeypatch.setenv("LEPTON_BATCHING__MAX_WAIT_MS", "7.5")
    monkeypatch.setenv("LEPTON_METRICS_PORT", "7077")
    assert {"LEPTON_BATCHING__MAX_WAIT_MS", "LEPTON_METRICS_PORT"} <= {row.variable for row in rows}
    settings = Settings(_env_file=None)
    assert (settings.batching.max_wait_ms, settings.metrics_port) == (7.5, 7077)


def test_write_replaces_only_the_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\nbefore\n<!-- config-reference:start -->\nold table\n"
                      "<!-- config-reference:end -->\nafter\n")
    assert write_reference(readme) is True
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n") and text.endswith("after\n") and "old table" not in text
    assert reference_block(text) == render()
    assert write_reference(readme) is False
    readme.write_text("no markers\n")
    with pytest.raises(LeptonError, match="config-reference:start"):
        write_reference(readme)
