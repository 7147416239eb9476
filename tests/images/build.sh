#!/usr/bin/env bash
# Builds the offline test images (nothing can be pulled here) and skips any image whose
# content label already matches the hash of its inputs, so a second run costs seconds.
#   ops-rollback-test/busybox:base      busybox-static rootfs (docker import)
#   ops-rollback-test/app:v1|v2|v3      busybox httpd web app, see app/entrypoint.sh
#   ops-rollback-test/pg-rootfs:bookworm debootstrap minbase + postgresql-15 (docker import)
#   ops-rollback-test/postgres:15       PostgreSQL 15 server, see postgres/entrypoint.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
label=ops.rollback.test.content
export DOCKER_BUILDKIT=0

content_hash() { cat "$@" | sha256sum | cut -c1-16; }
current_hash() { docker image inspect -f "{{ index .Config.Labels \"$label\" }}" "$1" 2>/dev/null || true; }
up_to_date() { [ "$(current_hash "$1")" = "$2" ]; }

build_busybox_base() {
  local image=ops-rollback-test/busybox:base hash dir
  hash=$(printf 'busybox %s\n' "$(sha256sum /bin/busybox)" | cat - "$0" | sha256sum | cut -c1-16)
  if up_to_date "$image" "$hash"; then echo "$image: up to date"; return; fi
  dir=$(mktemp -d)
  mkdir -p "$dir/bin" "$dir/tmp" "$dir/data"
  cp /bin/busybox "$dir/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$dir/bin/$applet"
  done
  tar -C "$dir" -c . | docker import --change "LABEL $label=$hash" - "$image" >/dev/null
  rm -rf "$dir"
  echo "$image: built"
}

build_app() {
  local base=ops-rollback-test/busybox:base base_hash version hash image
  base_hash=$(current_hash "$base")
  for version in v1 v2 v3; do
    image=ops-rollback-test/app:$version
    hash=$(printf '%s %s\n' "$base_hash" "$version" | cat - "$here/app/Dockerfile" "$here/app/entrypoint.sh" | sha256sum | cut -c1-16)
    if up_to_date "$image" "$hash"; then echo "$image: up to date"; continue; fi
    docker build -q --build-arg "BASE=$base" --build-arg "APP_VERSION=$version" \
      --label "$label=$hash" --label "org.opencontainers.image.version=$version" \
      -t "$image" "$here/app" >/dev/null
    echo "$image: built"
  done
}

build_pg_rootfs() {
  local image=ops-rollback-test/pg-rootfs:bookworm hash dir
  hash=$(printf 'debootstrap minbase bookworm postgresql-15 v1\n' | sha256sum | cut -c1-16)
  if up_to_date "$image" "$hash"; then echo "$image: up to date"; return; fi
  dir=$(mktemp -d /var/tmp/ops-rollback-pg.XXXXXX)
  echo "$image: debootstrap into $dir (about a minute)"
  debootstrap --variant=minbase --include=postgresql-15 bookworm "$dir" http://deb.debian.org/debian \
    > /var/tmp/ops-rollback-debootstrap.log 2>&1 || {
      echo "debootstrap failed, see /var/tmp/ops-rollback-debootstrap.log" >&2; rm -rf "$dir"; exit 1; }
  # What a server container never reads: docs, man pages, apt caches.
  rm -rf "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/info/* \
         "$dir"/var/cache/apt/* "$dir"/var/lib/apt/lists/* "$dir"/var/lib/postgresql/15/main
  tar -C "$dir" -c . | docker import --change "LABEL $label=$hash" - "$image" >/dev/null
  rm -rf "$dir"
  echo "$image: built"
}

build_postgres() {
  local base=ops-rollback-test/pg-rootfs:bookworm image=ops-rollback-test/postgres:15 hash
  hash=$(printf '%s\n' "$(current_hash "$base")" | cat - "$here/postgres/Dockerfile" "$here/postgres/entrypoint.sh" | sha256sum | cut -c1-16)
  if up_to_date "$image" "$hash"; then echo "$image: up to date"; return; fi
  docker build -q --build-arg "BASE=$base" --label "$label=$hash" -t "$image" "$here/postgres" >/dev/null
  echo "$image: built"
}

build_busybox_base
build_app
build_pg_rootfs
build_postgres
