"""`lepton produce` against the real broker: generated traffic at a rate, and JSONL replay with bad lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from streams.core.settings import Settings
from streams.tools.deadletters import parse_letters, read_topic

pytestmark = pytest.mark.integration
LEPTON = str(Path(sys.executable).parent / "lepton")


def _create(settings: Settings, *names: str) -> None:
    admin = AdminClient(settings.kafka.confluent_config())
    for future in admin.create_topics(
        [NewTopic(name, num_partitions=3, replication_factor=1) for name in names]
    ).values():
        future.result(timeout=30)


def _lepton(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LEPTON, *args], capture_output=True, text=True, timeout=300, env=os.environ | (env or {}))


def test_produce_transactions_at_a_rate_for_a_duration(settings: Settings, unique: str, tmp_path: Path) -> None:
    topic = f"it-{unique}-transactions"
    _create(settings, topic)
    truth = tmp_path / "truth.jsonl"
    result = _lepton(
        "produce",
        "transactions",
        "--rate",
        "200",
        "--duration",
        "3",
        "--topic",
        topic,
        "--truth-out",
        str(truth),
        "--seed",
        "4",
    )
    assert result.returncode == 0, result.stderr
    assert "sent" in result.stderr and "failed 0" in " ".join(result.stderr.split())
    values = read_topic(settings, topic)
    assert 400 <= len(values) <= 700  # about 200/s for 3 s
    events = [json.loads(value) for value in values]
    assert {event["id"] for event in events} == {json.loads(line)["id"] for line in truth.read_text().splitlines()}
    assert not any("is_fraud" in event for event in events)


def test_file_replay_reports_bad_lines_and_dead_letters_them(settings: Settings, unique: str, tmp_path: Path) -> None:
    topic, dead = f"it-{unique}-clicks", f"it-{unique}-deadletter"
    _create(settings, topic, dead)
    good = _lepton("generate", "clicks", "--count", "20", "--seed", "2")
    lines = good.stdout.splitlines()
    lines[3] = '{"id": "broken"'
    lines[7] = json.dumps(json.loads(lines[7]) | {"action": "like"})
    lines.insert(10, "")  # blank lines are skipped, not errors
    source = tmp_path / "clicks.jsonl"
    source.write_text("\n".join(lines) + "\n")

    without = _lepton("produce", "clicks", "--file", str(source), "--topic", topic, "--rate", "0")
    assert without.returncode == 1 and f"{source}:4" in without.stderr and f"{source}:8" in without.stderr
    assert len(read_topic(settings, topic)) == 18

    kept = _lepton(
        "produce",
        "clicks",
        "--file",
        str(source),
        "--topic",
        topic,
        "--rate",
        "0",
        "--dead-letter",
        env={"LEPTON_TOPICS__DEADLETTER": dead},
    )
    assert kept.returncode == 0, kept.stderr
    letters, _ = parse_letters(read_topic(settings, dead))
    assert sorted(letter.origin for letter in letters) == [f"{source}:4", f"{source}:8"]
    assert {letter.error_type for letter in letters} == {"invalid_json", "validation"}
    assert all(letter.source_topic == topic and letter.stage == "produce" for letter in letters)
