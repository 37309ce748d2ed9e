# Task runner. The two commands a newcomer needs: `make run` and `make test`.
.PHONY: help setup run test test-fast lint lint-imports typecheck up down status bench docs docs-check readme-check clean

help:
	@echo "make run        start the whole platform locally (Ctrl-C stops it)"
	@echo "make test       run the whole test suite (lint, types, import contracts, unit, integration)"
	@echo "make test-fast  the tests that need no PostgreSQL, Kafka or slow subprocess"
	@echo "make lint-imports  check the import contracts (.importlinter, services/*/.importlinter)"
	@echo "make up / down  start / stop only PostgreSQL and Kafka"
	@echo "make bench      run the benchmarks under bench/"
	@echo "make docs       regenerate the AsyncAPI and OpenAPI documents and the event catalogue"
	@echo "make readme-check  run the README's commands in order against the platform of \`make run\`"

setup:
	scripts/setup.sh

run: setup
	uv run --frozen devstack run

test:
	scripts/test.sh

# The fast tier: the tests that need neither the shared PostgreSQL nor Kafka nor a slow
# subprocess (handlers and service functions on a rolled-back database of the session's
# own embedded PostgreSQL, the apps in process, generators, deployment files); tests using
# the `infra` fixture are marked integration automatically (diaspora_devstack.pytest_plugin).
# Bytecode caches stay on even where the environment sets PYTHONDONTWRITEBYTECODE: without
# them every run compiles some 2000 modules and rewrites every test file's asserts again,
# a quarter of the tier's time.
test-fast: setup
	PYTHONDONTWRITEBYTECODE= uv run --frozen pytest -p no:xdist -q -m "not integration and not slow" $(ARGS)

lint:
	uv run --frozen ruff check .

# Import contracts: the root .importlinter and every services/*/.importlinter.
lint-imports:
	scripts/lint-imports.sh

typecheck:
	uv run --frozen mypy

up: setup
	uv run --frozen devstack up

down:
	uv run --frozen devstack down

status:
	uv run --frozen devstack status

# Every bench script, one after the other (bench/_*.py are helpers, not benchmarks).
bench: setup
	@set -e; for script in bench/[!_]*.py; do \
		echo "==> $$script"; uv run --frozen python "$$script"; \
	done

docs:
	uv run --frozen python -m diaspora_devstack.asyncapi write
	uv run --frozen python -m diaspora_devstack.openapi write

docs-check:
	uv run --frozen python -m diaspora_devstack.asyncapi check
	uv run --frozen python -m diaspora_devstack.openapi check

# The README's commands, in order, against the platform `make run` started (the suite
# does the same against a platform of its own: tests/test_make_run.py).
readme-check:
	uv run --frozen python -m diaspora_devstack.readme README.md

clean: down
	rm -rf .local
