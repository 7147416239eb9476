#!/usr/bin/env bash
# `ansible-test sanity --requirements` downloads a get-pip script from a host that can't be
# reached here. It first looks for a cached copy, so put a stand-in there that bootstraps pip
# from ensurepip and installs from the machine's own pip configuration.
set -euo pipefail
cache=$HOME/.ansible/test/cache
mkdir -p "$cache"
# ansible-test asks for the pip version it pins (24.2 in 2.19, 25.2 in 2.21): cover the range.
for version in {23..26}_{0..3}; do
  cat > "$cache/get_pip_$version.py.new" <<'PY'
"""Stand-in for get-pip.py (offline): ensurepip, then pip install the requested packages."""
import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
os.environ.pop("PIP_CONFIG_FILE", None)  # ansible-test points it at /dev/null
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args])
PY
  if cmp -s "$cache/get_pip_$version.py.new" "$cache/get_pip_$version.py"; then
    rm "$cache/get_pip_$version.py.new"
  else
    mv "$cache/get_pip_$version.py.new" "$cache/get_pip_$version.py"
  fi
done
