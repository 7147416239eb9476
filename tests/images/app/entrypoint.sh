#!/bin/sh
# Test web app, PID 1 of its container. Traps TERM so `docker stop` returns at once.
# Knobs for tests (environment):
#   APP_UNHEALTHY=1   /health answers 404, so the healthcheck and HTTP checks fail
#   APP_CRASH=1       exit 1 after APP_CRASH_AFTER seconds (a crash loop under restart policies)
#   APP_LOG_LINE=...  print this line to the log at start (for log-pattern checks)
version=$(cat /app/VERSION)
mkdir -p /data /app/www
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) start $version" >> /data/starts.log
echo "app $version starting"
[ -n "${APP_LOG_LINE:-}" ] && echo "$APP_LOG_LINE"
if [ "${APP_CRASH:-0}" = 1 ]; then
  sleep "${APP_CRASH_AFTER:-1}"
  echo "app $version exiting on purpose (APP_CRASH=1)"
  exit 1
fi
echo "$version" > /app/www/index.html
rm -f /app/www/health
[ "${APP_UNHEALTHY:-0}" = 1 ] || printf '{"status": "ok", "version": "%s"}\n' "$version" > /app/www/health
httpd -f -p "${APP_PORT:-8080}" -h /app/www &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT
wait "$pid"
