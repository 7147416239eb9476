#!/usr/bin/env bash
# Starts dockerd when no engine answers (no service manager runs on these machines).
set -euo pipefail
log=/var/log/ops-rollback-dockerd.log
docker info >/dev/null 2>&1 && exit 0
echo "setup: starting dockerd, log in $log"
nohup dockerd >"$log" 2>&1 &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "setup: dockerd did not answer within 30 s; see $log" >&2
exit 1
