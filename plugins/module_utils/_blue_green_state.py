# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which color of a blue-green stack serves: reading it, and recording a switch (the state
file, the ledger's current release and status, the project directory's files)."""

from __future__ import annotations

import os

from ansible_collections.ops.rollback.plugins.module_utils._blue_green import load_state, other_color, save_state, target_color
from ansible_collections.ops.rollback.plugins.module_utils._names import child_path
from ansible_collections.ops.rollback.plugins.module_utils._release_apply import file_changes
from ansible_collections.ops.rollback.plugins.module_utils._releases import (
    ENV_FILE,
    ReleaseError,
    find_release,
    load_ledger,
    read_files,
    release_dir,
    save_ledger,
    set_status,
    utc_now,
)
from ansible_collections.ops.rollback.plugins.module_utils._state_files import write_bytes_atomic


def state_view(state, release_id=None):
    active = state["active"]
    result = {
        "active": active,
        "idle": other_color(active) if active else "blue",
        "colors": state["colors"],
        "active_release_id": (state["colors"].get(active) or {}).get("release_id") if active else None,
    }
    if release_id:
        result["target_color"] = target_color(state, release_id)
    return result


def _release(ledger, stack, release_id):
    release = find_release(ledger, release_id)
    if release is None:
        raise ReleaseError("release %s is not in the ledger of stack %s" % (release_id, stack))
    return release


def read(state_dir, stack, release_id=None):
    result = state_view(load_state(state_dir, stack), release_id)
    if release_id:
        result["release_version"] = _release(load_ledger(state_dir, stack), stack, release_id).get("version")
    return result


def activate(state_dir, stack, project_dir, color, release_id, verified=False, check_mode=False):
    """Record color as serving release_id; returns the module result."""
    state = load_state(state_dir, stack)
    ledger = load_ledger(state_dir, stack)
    release = _release(ledger, stack, release_id)
    if not os.path.isdir(project_dir):
        raise ReleaseError("project_dir %s does not exist" % project_dir)
    wanted = read_files(os.path.join(release_dir(state_dir, stack, release_id), "files"), release["files"])
    writes, removes = file_changes(project_dir, wanted)
    entry = state["colors"].get(color) or {}
    state_changed = state["active"] != color or entry.get("release_id") != release_id
    # A release that passed the switch's checks (on its own ports and through the proxy) is
    # healthy; a failed or rolled-back one keeps its status.
    mark_healthy = verified and release.get("status", "unverified") == "unverified"
    # The release that serves is the ledger's current one (what the next rollback leaves).
    make_current = ledger.get("current") != release_id
    changed = state_changed or bool(writes or removes) or mark_healthy or make_current
    if changed and not check_mode:
        for name in writes:
            write_bytes_atomic(child_path(project_dir, name), wanted[name], mode=0o600 if name == ENV_FILE else 0o644)
        for name in removes:
            os.unlink(os.path.join(project_dir, name))
        if mark_healthy:
            set_status(ledger, release_id, "healthy")
        if mark_healthy or make_current:
            ledger["current"] = release_id
            save_ledger(state_dir, stack, ledger)
        if state_changed:
            state["active"] = color
            state["colors"][color] = {"release_id": release_id, "since": utc_now()}
            save_state(state_dir, stack, state)
    return dict(state_view(state), changed=changed, files_written=writes, files_removed=removes)
