#!/usr/bin/env bash
# The whole test suite: lint, types, import contracts, then unit and integration tests against a
# real PostgreSQL and a real Kafka broker. Uses DIASPORA_PG_URL and
# DIASPORA_KAFKA_BOOTSTRAP when both are set; otherwise starts the embedded
# local ones and stops them at the end if this script started them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export UV_PYTHON_DOWNLOADS=never
# Bytecode caches on (Makefile, test-fast): each test process would otherwise compile
# every module it imports, and pytest rewrite every test file, on every run.
export PYTHONDONTWRITEBYTECODE=

echo "==> ruff"
uv run --frozen ruff check .
uv run --frozen ruff format --check .
echo "==> mypy --strict"
uv run --frozen mypy
echo "==> import contracts"
scripts/lint-imports.sh

echo "==> infrastructure"
# Not "tee /dev/stderr": when stderr is a file (a CI log), reopening it truncates it.
up=$(uv run --frozen devstack up)
echo "$up" >&2
started=$(head -1 <<<"$up")
if [[ "$started" != *"nothing"* ]] && [ -z "${DIASPORA_PG_URL:-}" ]; then
  trap 'uv run --frozen devstack down' EXIT
fi

echo "==> pytest"
# Test files run in parallel processes (pytest-xdist, a whole file per process): most
# of the suite's time is spent waiting on brokers, consumer groups and subprocesses.
# DIASPORA_TEST_WORKERS=0 runs everything in this process. The slowest tests are listed
# at the end: the suite must stay well under 15 minutes.
uv run --frozen pytest -n "${DIASPORA_TEST_WORKERS:-3}" --dist loadfile --durations=15 "$@"
