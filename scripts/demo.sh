#!/usr/bin/env bash
# `make demo`: brings the demo stack (web app + PostgreSQL with 1,000 rows) up on the local
# engine, then runs the collection's playbooks against localhost. `scripts/demo.sh down`
# removes the stack and its data.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${OPS_ROLLBACK_DEMO_DIR:-/var/tmp/ops-rollback-demo}
project=opsdemo
export PATH="$root/.venv/bin:$PATH" ANSIBLE_CONFIG="$root/ansible.cfg"
compose() { docker compose --project-directory "$dir" --project-name "$project" "$@"; }

if [ "${1:-}" = down ]; then
  [ -d "$dir" ] && compose down --volumes --remove-orphans 2>/dev/null || true
  rm -rf "$dir"
  exit 0
fi

echo "== demo stack '$project' in $dir"
mkdir -p "$dir"
install -m 0644 "$root/demo/stack/compose.yml" "$dir/compose.yml"
[ -f "$dir/.env" ] || install -m 0600 "$root/demo/stack/env.example" "$dir/.env"
compose up --detach --wait --quiet-pull 2>&1 | grep -v -E '^ *(Container|Network|Volume) ' || true
compose exec -T db psql -q -U postgres -d app -v ON_ERROR_STOP=1 < "$root/demo/stack/seed.sql"
echo "   rows in items: $(compose exec -T db psql -U postgres -d app -tAc 'SELECT count(*) FROM items')"

play() { ansible-playbook -i "$root/demo/inventory.yml" -e @"$root/demo/vars.yml" -e project_dir="$dir" "$@"; }

echo "== ops.rollback.verify"
play ops.rollback.verify
