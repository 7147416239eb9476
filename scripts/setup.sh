#!/usr/bin/env bash
# One-command setup for `make demo` and `make test`: every step is idempotent and skips
# what is already in place, so the second run takes seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
steps="$root/scripts/setup"
"$steps/check_host.sh"
"$steps/debian_packages.sh"
"$steps/dockerd.sh"
"$steps/python_venvs.sh"
"$steps/compose_plugin.sh"
"$steps/collection_link.sh"
"$steps/ansible_test_get_pip.sh"
"$root/tests/images/build.sh"
echo "setup: ready"
