#!/usr/bin/env bash
# Makes this checkout importable as ops.rollback: Ansible (ansible.cfg), pytest and
# ansible-test all need it at a path ending in ansible_collections/ops/rollback.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
link="$root/.cache/collections/ansible_collections/ops/rollback"
mkdir -p "$(dirname "$link")"
[ "$(readlink "$link" 2>/dev/null)" = "$root" ] || ln -sfn "$root" "$link"
