#!/usr/bin/env bash
# Refuses to go on where setup can't work, and says what to install instead.
set -euo pipefail
problems=()
[ "$(id -u)" = 0 ] || problems+=("run as root (setup installs Debian packages and starts dockerd)")
if ! grep -qs '^ID=debian' /etc/os-release || ! grep -qs 'VERSION_ID="12"' /etc/os-release; then
  problems+=("this is not Debian 12; install by hand: docker.io (Engine + Compose v2), caddy, busybox-static, debootstrap, zstd, age, python3 >= 3.12 with venv")
fi
if [ ${#problems[@]} -gt 0 ]; then
  echo "setup can't continue:" >&2
  printf '  - %s\n' "${problems[@]}" >&2
  exit 1
fi
