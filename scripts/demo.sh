#!/usr/bin/env bash
# `make demo`: the main jobs of the collection against a demo stack on the local engine.
#   1. the demo stack (web app + PostgreSQL with 1,000 rows) is deployed as v1, then v2, and
#      each deploy is recorded as a release (ops.rollback.record_release);
#   2. ops.rollback.verify checks it;
#   3. ops.rollback.backup backs it up, the demo deletes rows, ops.rollback.restore brings them back;
#   4. ops.rollback.rollback shows the dry run, then rolls back to v1 and prints the report;
#   5. scripts/demo_blue_green.sh: the same stack behind Caddy, deployed blue-green and rolled
#      back blue-green under a probe that counts failed requests.
# Every run starts from a clean demo stack, so running it again gives the same result.
# `scripts/demo.sh down` removes the stack, its data and its state.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base=${OPS_ROLLBACK_DEMO_DIR:-/var/tmp/ops-rollback-demo}
dir=$base/stack
project=opsdemo
export PATH="$root/.venv/bin:$PATH" ANSIBLE_CONFIG="$root/ansible.cfg"
compose() { docker compose --project-directory "$dir" --project-name "$project" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

down() {
  [ -d "$dir" ] && compose down --volumes --remove-orphans >/dev/null 2>&1 || true
  docker image ls --format '{{.Repository}}:{{.Tag}}' --filter "reference=ops-rollback/${project}_*" \
    | xargs -r docker image rm --no-prune >/dev/null 2>&1 || true
  rm -rf "$base"
}
if [ "${1:-}" = down ]; then "$root/scripts/demo_blue_green.sh" down; down; exit 0; fi

deploy() {  # $1: version
  sed "s/^APP_VERSION=.*/APP_VERSION=$1/" "$root/demo/stack/env.example" > "$dir/.env"
  chmod 0600 "$dir/.env"
  compose up --detach --wait >/dev/null 2>&1
}
rows() { compose exec -T db psql -U postgres -d app -tAc 'SELECT count(*) FROM items'; }
play() {
  ansible-playbook -i "$root/demo/inventory.yml" -e @"$root/demo/vars.yml" \
    -e project_dir="$dir" -e state_dir="$base/state" -e backup_root="$base/backups" "$@"
}

down
mkdir -p "$dir"
install -m 0644 "$root/demo/stack/compose.yml" "$dir/compose.yml"

say "Deploy v1 of the demo stack '$project' in $dir, with 1,000 rows"
deploy v1
compose exec -T db psql -q -U postgres -d app -v ON_ERROR_STOP=1 < "$root/demo/stack/seed.sql"
play ops.rollback.record_release -e version=v1

say "Deploy v2 and record it"
deploy v2
play ops.rollback.record_release -e version=v2

say "ops.rollback.verify: is the stack healthy?"
play ops.rollback.verify

say "ops.rollback.backup, then damage the data (rows now: $(rows))"
play ops.rollback.backup
compose exec -T db psql -q -U postgres -d app -c 'DELETE FROM items WHERE id > 100'
echo "rows after the damage: $(rows)"

say "ops.rollback.restore of the latest backup"
play ops.rollback.restore -e confirm=RESTORE -e backup_id=latest
echo "rows after the restore: $(rows)"

say "ops.rollback.rollback --check: the dry run (nothing changes)"
play ops.rollback.rollback --check

say "ops.rollback.rollback -e confirm=ROLLBACK: back to v1"
play ops.rollback.rollback -e confirm=ROLLBACK -e "reason='make demo'"
echo "the app now says: $(curl -fsS http://127.0.0.1:18080/)  rows: $(rows)"
report=$(ls -t "$base"/state/$project/reports/*.md | head -n 1)
say "The rollback report ($report)"
cat "$report"

say "Blue-green behind Caddy (scripts/demo_blue_green.sh)"
"$root/scripts/demo_blue_green.sh"
