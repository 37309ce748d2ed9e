#!/usr/bin/env bash
# Installs what a fresh machine lacks to run and test the platform:
# uv (from PyPI), the Python packages (uv.lock), Java and Maven for the Kafka
# broker, kcat and nginx (Debian packages). Safe to run again: it only installs
# what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# Never let a tool fetch a Python build of its own: use this machine's 3.11.
export UV_PYTHON_DOWNLOADS=never
export UV_PYTHON="${UV_PYTHON:-python3.11}"

if ! command -v uv >/dev/null 2>&1; then
  say "installing uv from PyPI"
  python3.11 -m pip install --quiet uv || python3 -m pip install --quiet --user uv
  export PATH="$HOME/.local/bin:$PATH"
  hash -r
fi

missing_debs=()
command -v java >/dev/null 2>&1 || missing_debs+=(default-jre-headless)
command -v mvn >/dev/null 2>&1 || missing_debs+=(maven)
command -v kcat >/dev/null 2>&1 || missing_debs+=(kcat)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing_debs+=(nginx-light)
if [ ${#missing_debs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get)
  elif command -v sudo >/dev/null 2>&1; then apt_get=(sudo apt-get)
  else apt_get=()
  fi
  if [ ${#apt_get[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing_debs[*]}"
    "${apt_get[@]}" update -qq
    DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq --no-install-recommends "${missing_debs[@]}" >/dev/null
  else
    echo "missing: ${missing_debs[*]} (install them, or run the platform with Docker: docker compose up)" >&2
  fi
fi

say "installing Python packages (uv sync --frozen)"
uv sync --frozen --quiet
