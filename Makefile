# The front door: `make up` runs the cluster, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# After `bootstrap`, everything runs from the locked environment in .venv.
BIN := .venv/bin

.PHONY: help bootstrap up down status logs clean test lint typecheck unit openapi bench \
	loadtest loadtest-ui capacity faults k8s-gateway simulate

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

bootstrap: ## install what is missing: Debian packages and the Python environment
	@bash deploy/local/bootstrap.sh

up: bootstrap ## start Redis, PostgreSQL, 2 replicas of each service and nginx on :8080
	@$(BIN)/v5-cluster up

down: ## stop every process the cluster started (state is kept)
	@if [ -x .venv/bin/v5-cluster ]; then .venv/bin/v5-cluster down; fi

status: ## the cluster's processes
	@if [ -x .venv/bin/v5-cluster ]; then .venv/bin/v5-cluster status; else echo "not running"; fi

logs: ## recent log lines of every process
	@if [ -x .venv/bin/v5-cluster ]; then .venv/bin/v5-cluster logs -n 30; fi

clean: ## stop everything and wipe the state folder
	@if [ -x .venv/bin/v5-cluster ]; then .venv/bin/v5-cluster clean; else rm -rf .state; fi

openapi: bootstrap ## regenerate the gateway's merged nginx/openapi.json (and its Kubernetes copy)
	@$(BIN)/v5-cluster openapi
	@$(BIN)/v5-cluster k8s-gateway

k8s-gateway: bootstrap ## rewrite deploy/k8s/base/gateway/ from nginx/ (after editing nginx/)
	@$(BIN)/v5-cluster k8s-gateway

lint: bootstrap ## ruff
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

typecheck: bootstrap ## mypy
	@$(BIN)/mypy shared/src services/identity/src services/conversation/src \
		services/recommendation/src services/learning/src deploy/local/src

unit: bootstrap ## unit tests only (no servers)
	@$(BIN)/pytest tests/unit -q

simulate: bootstrap ## listener simulator: the product against baselines, reports/simulation.json and curves; fails on a missed target (SIMULATE_ARGS="--help")
	@$(BIN)/python -m loadtests.simulation --jobs 2 $(SIMULATE_ARGS)

faults: bootstrap ## fault injection under load (replica kills, Redis/PostgreSQL crashes), ~8 min
	@$(BIN)/pytest -q -m faults tests/faults

test: bootstrap ## lint, type checks, unit, integration and end-to-end tests, load smoke run
	@bash deploy/local/run-tests.sh

bench: bootstrap ## service-time benchmark: in-process and one-connection p50/p95/p99, session memory
	@$(BIN)/python loadtests/bench.py

loadtest: bootstrap ## 30 s smoke run of simulated listeners; fails on any error or non-2xx
	@$(BIN)/python -m loadtests.smoke

loadtest-ui: bootstrap ## locust's web UI on :8089 against a throwaway cluster, until Ctrl-C
	@$(BIN)/python -m loadtests.ui

capacity: bootstrap ## step and sustained load runs: reports/capacity.md (CAPACITY_ARGS="--help")
	@$(BIN)/python -m loadtests.capacity $(CAPACITY_ARGS)
