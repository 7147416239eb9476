#!/usr/bin/env bash
# Two venvs with exact pins: .venv (current: Python >= 3.12, ansible-core 2.21,
# community.docker 5) and .venv-compat (Python 3.11, ansible-core 2.19, community.docker 4.8).
# A venv is rebuilt only when its lock file changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

find_python() {  # $1: minimum minor version of Python 3
  local c
  for c in /root/.pyenv/versions/3.1[3-9]*/bin/python3 /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9]; do
    [ -x "$c" ] || continue
    "$c" -c "import sys, venv; sys.exit(sys.version_info < (3, $1))" 2>/dev/null && { echo "$c"; return; }
  done
  return 1
}

make_venv() {  # $1: venv dir  $2: python  $3: lock file
  local venv=$1 python=$2 lock=$3 stamp
  stamp=$(sha256sum "$lock" | cut -c1-16)
  [ -f "$venv/.lock-stamp" ] && [ "$(cat "$venv/.lock-stamp")" = "$stamp" ] && return 0
  echo "setup: creating $venv from $(basename "$lock") with $python"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$lock" 2>&1 | grep -v '^WARNING: Location' || true
  "$venv/bin/python" -c "import ansible" # fails loudly if the install did not happen
  echo "$stamp" > "$venv/.lock-stamp"
}

current=$(find_python 12) || {
  echo "setup: no Python >= 3.12 found; install python3.12+ (with venv) and run again" >&2; exit 1; }
make_venv "$root/.venv" "$current" "$root/requirements/current.txt"
# pyenv's shims can fail for a version that is not selected: prefer the real binaries.
compat=$(ls /root/.pyenv/versions/3.11*/bin/python3 /usr/bin/python3.11 2>/dev/null | head -n 1 || true)
[ -n "$compat" ] || { echo "setup: no Python 3.11 found for the compatibility venv" >&2; exit 1; }
make_venv "$root/.venv-compat" "$compat" "$root/requirements/compat.txt"
