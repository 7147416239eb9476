#!/usr/bin/env bash
# Re-resolves requirements/{current,compat}.txt from the .in files in throwaway venvs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lock() {  # $1 python  $2 name
  local tmp; tmp=$(mktemp -d)
  "$1" -m venv "$tmp/venv"
  "$tmp/venv/bin/pip" install -q --disable-pip-version-check -r "$root/requirements/$2.in"
  { echo "# Exact pins for the $2 venv. Generated from requirements/$2.in by 'make lock'."
    "$tmp/venv/bin/pip" freeze --exclude-editable | sort -f; } > "$root/requirements/$2.txt"
  rm -rf "$tmp"
}
lock "$(ls /root/.pyenv/versions/3.13*/bin/python3 | head -n 1)" current
lock "$(ls /root/.pyenv/versions/3.11*/bin/python3 | head -n 1)" compat
