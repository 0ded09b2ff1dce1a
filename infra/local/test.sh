#!/usr/bin/env bash
# Run every test tier against a real local stack: lint, import contracts (the layers), unit, integration, e2e.
# Starts the stack, stops it on exit, and prints the service logs when anything fails.
set -uo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
LEPTON=.venv/bin/lepton

on_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "=== tests failed (exit $rc): service status and log tails ==="
    $LEPTON status || true
    for log in .lepton/run/*.log; do
      [ -f "$log" ] && { echo "--- $log (last 60 lines)"; tail -n 60 "$log"; }
    done
  fi
  $LEPTON down || true
  exit "$rc"
}
trap on_exit EXIT

set -e
.venv/bin/ruff check streams models sinks infra tests
.venv/bin/lint-imports  # the layers of docs/architecture.md, declared in pyproject.toml
$LEPTON up
$LEPTON topics create
.venv/bin/pytest tests/unit tests/integration tests/e2e -q -p no:cacheprovider --durations=15 --junit-xml=test-artifacts/junit.xml
