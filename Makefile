# lepton-streams: the two commands of the README, and a few helpers.
SHELL := /bin/bash
LEPTON := .venv/bin/lepton
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
WORKERS ?= 1

.PHONY: demo test setup up down status lint unit schemas

demo: setup  ## set up, start the local stack and run the demo pipeline (live progress, then a summary); WORKERS=2 runs two
	$(LEPTON) demo --workers $(WORKERS)

test: setup  ## set up, start the local stack, run every test tier, stop the stack
	bash infra/local/test.sh

setup:  ## install uv, the locked .venv, Java/Maven/Prometheus where missing
	bash infra/local/setup.sh

up:
	$(LEPTON) up
down:
	$(LEPTON) down
status:
	$(LEPTON) status
lint:
	.venv/bin/ruff check streams models sinks infra tests
	.venv/bin/lint-imports
unit:
	.venv/bin/pytest tests/unit -q
