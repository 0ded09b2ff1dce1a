#!/usr/bin/env bash
# Set up everything lepton-streams needs on a fresh Debian machine, idempotently:
# uv, the locked Python environment in .venv/, Java + Maven (for the local Kafka/OpenSearch), Prometheus.
# Maven artifacts themselves are fetched by `lepton up` (with retries) on first start.
set -euo pipefail
cd "$(dirname "$0")/../.."

UV_VERSION=0.13.8
ATTEMPTS=3

retry() {  # retry N times with a growing pause: retry <what> <command...>
  local what=$1; shift
  for attempt in $(seq 1 "$ATTEMPTS"); do
    if "$@"; then return 0; fi
    echo "setup: $what failed (attempt $attempt/$ATTEMPTS)" >&2
    [ "$attempt" -lt "$ATTEMPTS" ] && sleep $((attempt * 10))
  done
  echo "setup: giving up on $what after $ATTEMPTS attempts; see the error above" >&2
  return 1
}

apt_updated=0
apt_install() {  # apt_install <package...>: only what is missing; needs root
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: please install: sudo apt-get install -y --no-install-recommends $*" >&2; return 1
  fi
  if [ "$apt_updated" -eq 0 ]; then retry "apt-get update" apt-get update -q >/dev/null; apt_updated=1; fi
  retry "apt-get install $*" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

if ! command -v uv >/dev/null || [ "$(uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  echo "setup: installing uv $UV_VERSION"
  retry "pip install uv" python3 -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

echo "setup: syncing .venv from uv.lock"
retry "uv sync" uv sync --locked --quiet

command -v java >/dev/null || apt_install openjdk-17-jre-headless
command -v mvn >/dev/null || apt_install maven
command -v prometheus >/dev/null || apt_install prometheus
# Headless Chromium and its matching driver (same Debian source package) for the live-console browser test.
command -v chromium >/dev/null && command -v chromedriver >/dev/null || apt_install chromium chromium-driver
# Debian's package may start its own Prometheus on :9090 where an init system runs; the stack runs its own.
if command -v service >/dev/null && [ -f /etc/init.d/prometheus ]; then service prometheus stop >/dev/null 2>&1 || true; fi
echo "setup: ready ($(.venv/bin/python --version), $(java -version 2>&1 | head -1), $(prometheus --version 2>&1 | head -1 | cut -d' ' -f1-3))"
