# syntax=docker/dockerfile:1.7
# The lepton-streams worker: `docker build -t lepton-streams .`, run by infra/docker-compose.yml.
# Dependencies come from uv.lock exactly (uv sync --frozen). torch from PyPI is the CUDA build (several GB with
# its nvidia-* wheels): the same image runs on CPU hosts and, with the NVIDIA container toolkit, on GPU hosts.

FROM python:3.11-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.8 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first, in their own layer: code changes do not re-download torch.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-install-project
COPY streams streams
COPY models models
COPY sinks sinks
COPY infra infra
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev

FROM python:3.11-slim
RUN groupadd --system --gid 10001 lepton \
    && useradd --system --uid 10001 --gid lepton --home-dir /var/lib/lepton --create-home lepton
COPY --from=build /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    HF_HOME=/var/lib/lepton/hf \
    LEPTON_MODE=production \
    LEPTON_METRICS_HOST=0.0.0.0 \
    LEPTON_METRICS_PORT=6066 \
    LEPTON_LOCAL__STATE_DIR=/var/lib/lepton/state
# Code and models are root-owned and read-only for the worker; Faust's data folder goes to the working directory.
USER lepton
WORKDIR /var/lib/lepton
EXPOSE 6066
# /ready answers 200 once the agents run (models loaded, partitions assigned), 503 before.
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('LEPTON_METRICS_PORT', '6066'), timeout=4)"]
ENTRYPOINT ["lepton"]
CMD ["worker"]
