#!/usr/bin/env bash
# The blue-green part of `make demo`: the demo stack behind Caddy, rolled back blue-green.
#   1. Caddy (Debian's /usr/bin/caddy) serves http://127.0.0.1:18090 from demo/blue_green/Caddyfile,
#      whose reverse_proxy imports a snippet that the switch rewrites;
#   2. the shared project (PostgreSQL with 1,000 rows) starts, v1 and v2 are recorded and
#      deployed with ops.rollback.blue_green_deploy (v1 in blue, then v2 in green);
#   3. ops.rollback.rollback strategy=blue_green takes it back to v1 while a probe sends requests
#      through Caddy the whole time, and the probe's count of failed requests is printed.
# `scripts/demo_blue_green.sh down` removes it all.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base=${OPS_ROLLBACK_DEMO_DIR:-/var/tmp/ops-rollback-demo}/blue_green
dir=$base/stack
project=opsdemobg
export PATH="$root/.venv/bin:$PATH" ANSIBLE_CONFIG="$root/ansible.cfg"
compose() { docker compose --project-directory "$dir" --project-name "$project" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

down() {
  if [ -f "$base/caddy/caddy.pid" ]; then kill "$(cat "$base/caddy/caddy.pid")" 2>/dev/null || true; fi
  for p in "$project-blue" "$project-green"; do docker compose --project-name "$p" down --remove-orphans >/dev/null 2>&1 || true; done
  [ -d "$dir" ] && compose down --volumes --remove-orphans >/dev/null 2>&1 || true
  docker volume rm "${project}_webdata" >/dev/null 2>&1 || true
  docker image ls --format '{{.Repository}}:{{.Tag}}' --filter "reference=ops-rollback/${project}_*" \
    | xargs -r docker image rm --no-prune >/dev/null 2>&1 || true
  rm -rf "$base"
}
if [ "${1:-}" = down ]; then down; exit 0; fi

play() {
  ansible-playbook -i "$root/demo/inventory.yml" -e @"$base/vars.yml" "$@"
}
# Runs a playbook, prints the lines after the task named $1; the whole output if it fails.
play_show() {
  local task=$1; shift
  if ! play "$@" > "$base/last-run.log" 2>&1; then
    cat "$base/last-run.log"; echo "demo: ansible-playbook $1 failed (log: $base/last-run.log)" >&2; exit 1
  fi
  sed -n "/$task/,/^\$/p" "$base/last-run.log" | sed '1d'
}
write_env() {  # $1: version
  sed "s/^APP_VERSION=.*/APP_VERSION=$1/" "$root/demo/stack/env.example" > "$dir/.env"
  chmod 0600 "$dir/.env"
}
rows() { compose exec -T db psql -U postgres -d app -tAc 'SELECT count(*) FROM items'; }

down
mkdir -p "$dir" "$base/caddy/upstreams"
snippet=$base/caddy/upstreams/web.caddy
install -m 0644 "$root/demo/stack/compose.yml" "$dir/compose.yml"

# The demo job's extra vars (see docs/blue_green.md).
cat > "$base/vars.yml" <<VARS
stack: $project
project_dir: $dir
state_dir: $base/state
backup_root: $base/backups
blue_green:
  proxy_url: http://127.0.0.1:18090
  caddy_admin_url: http://127.0.0.1:2029
  caddyfile: $base/caddy/Caddyfile
  caddy_binary: /usr/bin/caddy
  scale_down_delay: 2
  services:
    - {name: web, container_port: 8080, blue_port: 18091, green_port: 18092, caddy_host: 127.0.0.1, caddy_snippet: $snippet}
integrity_checks:
  - {name: items_count, service: db, argv: [psql, -U, postgres, -d, app, -tAc, "SELECT count(*) FROM items"], expected: "1000"}
VARS

say "Caddy on http://127.0.0.1:18090 (admin 127.0.0.1:2029), its upstream in $snippet"
sed "s#@SNIPPET@#$snippet#" "$root/demo/blue_green/Caddyfile" > "$base/caddy/Caddyfile"
echo "to 127.0.0.1:18091" > "$snippet"
# exec: the PID file names Caddy itself; no shell stays behind holding the terminal.
(cd "$base/caddy" && HOME=$base/caddy XDG_CONFIG_HOME=$base/caddy XDG_DATA_HOME=$base/caddy \
  exec /usr/bin/caddy run --config Caddyfile --adapter caddyfile) > "$base/caddy/caddy.log" 2>&1 < /dev/null &
echo $! > "$base/caddy/caddy.pid"
for _ in $(seq 50); do curl -fsS -o /dev/null http://127.0.0.1:2029/config/ 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null http://127.0.0.1:2029/config/ || { cat "$base/caddy/caddy.log"; echo "demo: Caddy did not start" >&2; exit 1; }

say "The shared project '$project' (PostgreSQL, 1,000 rows); v1 and v2 recorded"
write_env v1
compose up --detach --wait db >/dev/null 2>&1
compose exec -T db psql -q -U postgres -d app -v ON_ERROR_STOP=1 < "$root/demo/stack/seed.sql"
play_show 'Record | Say what' ops.rollback.record_release -e version=v1 -e verify=false
say "ops.rollback.blue_green_deploy release=v1: v1 serves from the blue color"
play_show 'Switch | Say what serves' ops.rollback.blue_green_deploy -e release=v1
write_env v2
play_show 'Record | Say what' ops.rollback.record_release -e version=v2 -e verify=false
say "ops.rollback.blue_green_deploy release=v2: v2 starts in green, is verified, Caddy switches"
play_show 'Switch | Say what serves' ops.rollback.blue_green_deploy -e release=v2
echo "through Caddy: $(curl -fsS http://127.0.0.1:18090/)"

say "ops.rollback.rollback strategy=blue_green: back to v1, with a probe sending requests through Caddy"
rm -f "$base/probe.stop"
PROBE_MAX_S=300 python3 "$root/benchmarks/baseline/probe.py" http://127.0.0.1:18090/ "$base/probe.stop" > "$base/probe.json" &
probe=$!
play_show 'Record | Say what was done' ops.rollback.rollback -e strategy=blue_green -e confirm=ROLLBACK -e "reason='make demo (blue-green)'"
touch "$base/probe.stop"; wait "$probe"
echo "probe through Caddy during the rollback: $(cat "$base/probe.json")"
echo "through Caddy now: $(curl -fsS http://127.0.0.1:18090/)  rows: $(rows)"
echo "the snippet Caddy reloads from: $(tail -n 1 "$snippet")"
