#!/usr/bin/env bash
# Import contracts (docs/architecture.md, "Service layout"): the root .importlinter
# (libraries never import a service, services never import each other, nothing shipped
# imports the development tooling), then each service's own services/<name>/.importlinter
# (its layers, a framework-free domain, no cycles between its features).
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
status=0
for config in .importlinter services/*/.importlinter; do
  echo "==> lint-imports $config"
  uv run --frozen lint-imports --no-logo "$config" || status=1
done
exit "$status"
