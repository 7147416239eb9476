#!/usr/bin/env bash
# Installs the Debian packages the test bed needs, only when one is missing.
set -euo pipefail
packages=(docker.io caddy busybox-static debootstrap zstd age jq make git bc iproute2 curl rsync python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "setup: installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# caddy's package ships a systemd unit; nothing here starts it (no service manager runs).
