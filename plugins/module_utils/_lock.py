# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One rollback or restore at a time per stack: ``<state_dir>/<stack>/lock``.

The lock file is created with O_EXCL and names its owner: the run ID, the controller host
and the PID of ansible-playbook there (the stack_lock action plugin adds them), and when it
was taken. A lock whose owner is gone is stale: when the owner ran on the same controller
and its process no longer exists, or when it is older than ``max_age``.
"""

from __future__ import annotations

import datetime
import json
import os

from ansible_collections.ops.rollback.plugins.module_utils._names import check_name, child_path
from ansible_collections.ops.rollback.plugins.module_utils._state_files import ensure_dir


class LockError(Exception):
    """The lock is held by someone else; the message says by whom and how to clear it."""


def lock_path(state_dir, stack):
    return child_path(state_dir, check_name(stack, "stack"), "lock")


def read_lock(path):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except ValueError:
        return {"run_id": "unreadable", "corrupt": True}


def _age_seconds(owner, now):
    try:
        taken = datetime.datetime.strptime(owner.get("taken_at", ""), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    return (now - taken).total_seconds()


def stale_reason(owner, me, now, max_age, pid_alive):
    """Why a held lock can be taken over, or None while its owner may still be running."""
    if owner.get("corrupt"):
        return "the lock file is unreadable"
    if owner.get("controller") == me.get("controller") and owner.get("controller_pid"):
        if not pid_alive(owner["controller_pid"]):
            return "its ansible-playbook (pid %s on %s) no longer runs" % (owner["controller_pid"], owner["controller"])
    age = _age_seconds(owner, now)
    if age is not None and max_age and age > max_age:
        return "it is %d s old, more than lock_max_age (%d s)" % (age, max_age)
    return None


def pid_alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError):
        return True
    return True


def describe(owner):
    return "run %s (%s) by %s from %s, pid %s, taken at %s" % (
        owner.get("run_id"), owner.get("operation"), owner.get("who"), owner.get("controller"),
        owner.get("controller_pid"), owner.get("taken_at"))


def acquire(state_dir, stack, me, max_age, break_lock=False, check_mode=False):
    """Take the lock for `me`. Returns (changed, previous_owner, note)."""
    path = lock_path(state_dir, stack)
    owner = read_lock(path)
    if owner is not None and owner.get("run_id") == me["run_id"]:
        return False, owner, "already held by this run"
    note = None
    if owner is not None:
        reason = "break_lock was set" if break_lock else stale_reason(owner, me, datetime.datetime.now(datetime.timezone.utc), max_age, pid_alive)
        if reason is None:
            raise LockError("stack %s is locked by %s. Another rollback or restore is running; wait for it. If it "
                            "was killed, remove %s or run again with -e break_lock=true." % (stack, describe(owner), path))
        note = "took over a stale lock of %s: %s" % (describe(owner), reason)
    if check_mode:
        return True, owner, note
    ensure_dir(os.path.dirname(path))
    if owner is not None:
        _remove_if_still(path, owner, stack)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise LockError("stack %s was locked by another run at the same moment (%s)" % (stack, path))
    with os.fdopen(fd, "w") as handle:
        json.dump(me, handle, sort_keys=True)
    return True, owner, note


def _remove_if_still(path, owner, stack):
    """Remove the stale lock judged above, and only that one: it is moved aside first, so a
    run that took the lock in the meantime keeps it."""
    aside = "%s.stale-%s" % (path, os.getpid())
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if read_lock(aside) != owner:
        os.rename(aside, path)
        raise LockError("stack %s was locked by another run while this one took over a stale lock" % stack)
    os.unlink(aside)


def release(state_dir, stack, run_id, check_mode=False):
    """Drop the lock if this run holds it. Returns changed."""
    path = lock_path(state_dir, stack)
    owner = read_lock(path)
    if owner is None or owner.get("run_id") != run_id:
        return False
    if not check_mode:
        os.unlink(path)
    return True
