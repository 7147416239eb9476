# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release ledger: what was deployed, where its files are, which release is current.

Layout under ``<state_dir>/<stack>/``::

    ledger.json                   releases in deploy order, their status, the current one
    releases/<id>/files/...       compose files, .env (0600), extra files, as deployed
    releases/<id>/resolved.json   ``docker compose config`` of the release (holds secrets: 0600)
    history.jsonl, reports/       written by the rollback (see _history.py)

A release ID is derived from the content (file checksums and image IDs), so the same content
gives the same ID on every host. Everything here is pure (plain data in, plain data
out) or touches only the state files; _release_store.py adds what needs Docker.
"""

from __future__ import annotations

import datetime
import glob
import hashlib
import json
import os
import re

from ansible_collections.ops.rollback.plugins.module_utils._names import check_name, child_path
from ansible_collections.ops.rollback.plugins.module_utils._state_files import (
    ensure_dir,
    read_json,
    write_json_atomic,
)

# Compose's own search order in a project directory (compose-go cli.DefaultFileNames and
# DefaultOverrideFileNames): the first file found, plus the first override found.
DEFAULT_COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
OVERRIDE_FILES = ("compose.override.yml", "compose.override.yaml", "docker-compose.override.yml", "docker-compose.override.yaml")
ENV_FILE = ".env"
KEEP_REPOSITORY = "ops-rollback"
STATUSES = ("unverified", "healthy", "failed", "rolled-back")


class ReleaseError(Exception):
    """A release can't be recorded, found or used; the message says which and why."""


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# -- paths -----------------------------------------------------------------------------
def stack_dir(state_dir, stack):
    return child_path(state_dir, check_name(stack, "stack"))


def release_dir(state_dir, stack, release_id):
    return child_path(stack_dir(state_dir, stack), "releases", check_name(release_id, "release id"))


def ledger_path(state_dir, stack):
    return os.path.join(stack_dir(state_dir, stack), "ledger.json")


# -- the ledger --------------------------------------------------------------------------
def load_ledger(state_dir, stack):
    return read_json(ledger_path(state_dir, stack), default=None) or {"stack": stack, "current": None, "releases": []}


def save_ledger(state_dir, stack, ledger):
    ensure_dir(stack_dir(state_dir, stack))
    write_json_atomic(ledger_path(state_dir, stack), ledger)


def find_release(ledger, release_id):
    for release in ledger["releases"]:
        if release["id"] == release_id:
            return release
    return None


def set_status(ledger, release_id, status):
    if status not in STATUSES:
        raise ReleaseError("unknown release status %r" % status)
    release = find_release(ledger, release_id)
    if release is None:
        raise ReleaseError("release %s is not in the ledger of stack %s" % (release_id, ledger["stack"]))
    release["status"] = status
    release.setdefault("status_history", []).append({"status": status, "at": utc_now()})
    return release


def public_status(ledger, release):
    """Status as operators read it: `current` for the running release, else the stored one."""
    return "current" if release["id"] == ledger.get("current") else release.get("status", "unverified")


# -- target selection (pure) -------------------------------------------------------------
def select_target(ledger, target="previous"):
    """The release a rollback goes to.

    ``previous``: the newest release deployed before the current one that was verified
    healthy; a release that was rolled back from, or failed, is never chosen, so rolling back
    twice goes further back each time. Otherwise ``target`` is a release ID (or a unique
    prefix of at least 6 characters) or a version label (the newest release with it).
    """
    releases = ledger["releases"]
    current = ledger.get("current")
    if target in (None, "", "previous"):
        ids = [r["id"] for r in releases]
        if current not in ids:
            raise ReleaseError("stack %s has no current release in its ledger; record one first "
                               "(playbook ops.rollback.record_release)" % ledger["stack"])
        before = releases[:ids.index(current)]
        for release in reversed(before):
            if release.get("status") == "healthy":
                return release
        raise ReleaseError("stack %s has no healthy release before the current one (%s); releases: %s"
                           % (ledger["stack"], current, describe_releases(ledger) or "none"))
    exact = [r for r in releases if r["id"] == target]
    if exact:
        return exact[0]
    if len(target) >= 6:
        prefixed = [r for r in releases if r["id"].startswith(target)]
        if len(prefixed) == 1:
            return prefixed[0]
        if len(prefixed) > 1:
            raise ReleaseError("target %r matches several releases: %s" % (target, ", ".join(r["id"] for r in prefixed)))
    labelled = [r for r in releases if r.get("version") == target]
    if labelled:
        return labelled[-1]
    raise ReleaseError("target %r is not a release ID, ID prefix or version label of stack %s; releases: %s"
                       % (target, ledger["stack"], describe_releases(ledger) or "none"))


def describe_releases(ledger):
    return ", ".join("%s%s (%s)" % (r["id"], " " + r["version"] if r.get("version") else "", public_status(ledger, r))
                     for r in ledger["releases"])


# -- what a release is made of -------------------------------------------------------------
def is_outside(relpath):
    return relpath == os.pardir or relpath.startswith(os.pardir + os.sep)


def compose_file_names(project_dir, files):
    """Compose files of the project, relative to project_dir, as Compose would pick them."""
    if files:
        names = []
        for path in files:
            full = path if os.path.isabs(path) else os.path.join(project_dir, path)
            rel = os.path.relpath(os.path.realpath(full), os.path.realpath(project_dir))
            if is_outside(rel):
                raise ReleaseError("compose file %s is outside project_dir %s" % (path, project_dir))
            names.append(rel)
        return names
    for name in DEFAULT_COMPOSE_FILES:
        if os.path.isfile(os.path.join(project_dir, name)):
            overrides = [o for o in OVERRIDE_FILES if os.path.isfile(os.path.join(project_dir, o))]
            return [name] + overrides[:1]
    raise ReleaseError("no compose file in %s (looked for %s)" % (project_dir, ", ".join(DEFAULT_COMPOSE_FILES)))


def release_file_names(project_dir, files, extra_globs=()):
    """Every file a release keeps: compose files, .env if present, and extra globs."""
    names = compose_file_names(project_dir, files)
    if os.path.isfile(os.path.join(project_dir, ENV_FILE)):
        names.append(ENV_FILE)
    for pattern in extra_globs:
        for path in sorted(glob.glob(os.path.join(project_dir, pattern))):
            if os.path.isfile(path):
                rel = os.path.relpath(path, project_dir)
                if not is_outside(rel) and rel not in names:
                    names.append(rel)
    return names


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def read_files(base_dir, names):
    contents = {}
    for name in names:
        with open(os.path.join(base_dir, name), "rb") as handle:
            contents[name] = handle.read()
    return contents


def migration_checksums(project_dir, migrations_glob):
    if not migrations_glob:
        return {}
    sums = {}
    for path in sorted(glob.glob(os.path.join(project_dir, migrations_glob), recursive=True)):
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                sums[os.path.relpath(path, project_dir)] = sha256_bytes(handle.read())
    return sums


def release_id_for(file_contents, services):
    """Content-derived ID: the same files and image IDs give the same ID on every host."""
    material = {
        "files": {name: sha256_bytes(data) for name, data in sorted(file_contents.items())},
        "images": {name: svc.get("image_id") for name, svc in sorted(services.items())},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode("utf-8")).hexdigest()[:12]


def _repo_component(name):
    """A Docker repository path component: lowercase alphanumerics joined by single separators."""
    parts = re.split(r"[^a-z0-9]+", name.lower())
    return "-".join(p for p in parts if p) or "x"


def keep_tag(stack, service, release_id):
    """A tag that keeps a release's image alive through `docker image prune`."""
    return "%s/%s_%s:%s" % (KEEP_REPOSITORY, _repo_component(stack), _repo_component(service), release_id)


def add_or_touch(ledger, snap, version=None, commit=None, status="unverified", make_current=True):
    """Put a snapshot in the ledger. A new release is appended; one that is there already is
    moved to the end when it becomes current again (it was deployed again)."""
    entry = find_release(ledger, snap["id"])
    now = utc_now()
    if entry is None:
        entry = {
            "id": snap["id"],
            "version": version,
            "git_commit": commit,
            "recorded_at": now,
            "services": snap["services"],
            "files": snap["files"],
            "compose_files": snap["compose_files"],
            "migrations": snap["migrations"],
            "status": status,
            "status_history": [{"status": status, "at": now}],
            "backups": [],
        }
        ledger["releases"].append(entry)
    else:
        if version and not entry.get("version"):
            entry["version"] = version
        if make_current and ledger.get("current") != entry["id"]:
            ledger["releases"].remove(entry)
            ledger["releases"].append(entry)
    if make_current:
        if ledger.get("current") != entry["id"]:
            entry["deployed_at"] = now
        ledger["current"] = entry["id"]
    return entry


def prune_candidates(ledger, keep, protect=()):
    """Releases beyond the newest `keep`, never the current one nor any in `protect`."""
    protected = set(protect) | {ledger.get("current")}
    extra = len(ledger["releases"]) - keep
    victims = []
    for release in ledger["releases"]:
        if extra <= 0:
            break
        if release["id"] in protected:
            continue
        victims.append(release)
        extra -= 1
    return victims


def release_entry_view(ledger, release, images_present=None):
    """What release_info returns for one release."""
    view = {
        "id": release["id"],
        "version": release.get("version"),
        "git_commit": release.get("git_commit"),
        "recorded_at": release.get("recorded_at"),
        "deployed_at": release.get("deployed_at"),
        "status": public_status(ledger, release),
        "verified": release.get("status") == "healthy",
        "images": {name: {"image": svc.get("image"), "image_id": svc.get("image_id"),
                          "keep_tag": svc.get("keep_tag")}
                   for name, svc in release.get("services", {}).items()},
        "backups": list(release.get("backups", [])),
    }
    if images_present is not None:
        view["images_present"] = images_present
    return view
