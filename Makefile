# Deal Ledger — every target installs or starts what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

# Integration tests use these; point them at your own servers to skip starting ours.
LOCAL_PG_URL := postgresql://dealledger:dealledger@127.0.0.1:5432/dealledger_test
export DEALLEDGER_TEST_DATABASE_URL ?= $(if $(DEALLEDGER_DATABASE_URL),$(DEALLEDGER_DATABASE_URL),$(LOCAL_PG_URL))
export DEALLEDGER_TEST_KAFKA_BOOTSTRAP ?= $(if $(DEALLEDGER_KAFKA_BOOTSTRAP),$(DEALLEDGER_KAFKA_BOOTSTRAP),127.0.0.1:9092)
export HYPOTHESIS_PROFILE ?= ci

# pytest exits 5 when it collected nothing: say so plainly instead of failing
# an empty selection, while every other non-zero code still fails the target.
define run_pytest
	$(PY) -m pytest $(1); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests collected in $(1)"; exit 0; fi; exit $$rc
endef

# The official AsyncAPI parser (Node.js), for the test that checks docs/asyncapi.json.
ASYNCAPI_PARSER := .cache/asyncapi/node_modules/@asyncapi/parser/package.json

.PHONY: help install services-up services-down services-status demo test test-unit test-integration lint format bench clean

help:
	@echo "make demo           run the main job on the embedded store (no servers)"
	@echo "make test           install, start PostgreSQL + Kafka, run every test"
	@echo "make test-unit      unit + property tests only (no servers)"
	@echo "make lint           ruff + mypy (strict)"
	@echo "make services-up    start local PostgreSQL and Kafka (services-down stops them)"
	@echo "make bench          benchmarks"

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@# setuptools says "Editable installation ... be careful with folders" on every
	@# editable install: information only, so it is silenced and nothing else is.
	PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

services-up: install
	bash infra/services/postgres.sh up
	bash infra/services/kafka.sh up

services-down:
	bash infra/services/kafka.sh down
	bash infra/services/postgres.sh down

services-status:
	@bash infra/services/postgres.sh status
	@bash infra/services/kafka.sh status

demo: install
	$(VENV)/bin/dealledger demo

test-unit: install
	$(call run_pytest,tests/unit tests/property -m "not integration")

$(ASYNCAPI_PARSER):
	@command -v npm >/dev/null || { echo "npm (Node.js) is needed for the AsyncAPI parser test"; exit 1; }
	mkdir -p .cache/asyncapi
	npm install --prefix .cache/asyncapi --no-audit --no-fund --silent --cache .cache/npm @asyncapi/parser@3.6.6

test-integration: services-up $(ASYNCAPI_PARSER)
	$(call run_pytest,tests -m integration)

test: services-up $(ASYNCAPI_PARSER)
	$(call run_pytest,tests)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# QUICK=1 for a ~1 minute run; BENCH_ARGS for more flags (python -m tests.benchmarks --help).
bench: services-up
	$(PY) -m tests.benchmarks $(if $(filter-out 0 no false,$(QUICK)),--quick) $(BENCH_ARGS)

clean:
	rm -rf .run .dealledger .pytest_cache .mypy_cache .ruff_cache .hypothesis
