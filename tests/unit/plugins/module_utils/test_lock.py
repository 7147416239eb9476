# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The per-stack lock: staleness, acquire, takeover, release."""

from __future__ import annotations

import datetime
import json
import os

import pytest

from ansible_collections.ops.rollback.plugins.module_utils import _lock
from ansible_collections.ops.rollback.plugins.module_utils._lock import (
    LockError,
    acquire,
    lock_path,
    pid_alive,
    read_lock,
    release,
    stale_reason,
)
from ansible_collections.ops.rollback.plugins.module_utils._names import NameError_

NOW = datetime.datetime(2026, 11, 22, 4, 30, 0, tzinfo=datetime.timezone.utc)


def stamp(seconds_ago, now=None):
    return ((now or NOW) - datetime.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def owner(run_id="run-1", controller="ctl-a", pid=1234, seconds_ago=10, now=None, **extra):
    return dict({"run_id": run_id, "controller": controller, "controller_pid": pid, "operation": "rollback",
                 "who": "alice", "taken_at": stamp(seconds_ago, now)}, **extra)


def alive(_pid):
    return True


def dead(_pid):
    return False


def now_owner(**kw):
    """An owner whose taken_at is relative to the real clock (acquire uses it)."""
    return owner(now=datetime.datetime.now(datetime.timezone.utc), **kw)


def write_lock(state_dir, stack, data):
    path = lock_path(str(state_dir), stack)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(data if isinstance(data, str) else json.dumps(data))
    return path


# -- stale_reason ----------------------------------------------------------------------------
def test_stale_reason_corrupt_lock():
    assert stale_reason({"run_id": "unreadable", "corrupt": True}, owner(), NOW, 3600, alive) == \
        "the lock file is unreadable"


def test_stale_reason_same_controller_dead_pid():
    reason = stale_reason(owner(pid=4321), owner(run_id="me"), NOW, 3600, dead)
    assert reason == "its ansible-playbook (pid 4321 on ctl-a) no longer runs"


def test_stale_reason_same_controller_live_pid_is_not_stale():
    assert stale_reason(owner(), owner(run_id="me"), NOW, 3600, alive) is None


def test_stale_reason_does_not_check_pids_of_another_controller():
    checked = []
    reason = stale_reason(owner(controller="ctl-b"), owner(run_id="me"), NOW, 3600, checked.append)
    assert reason is None
    assert checked == []


def test_stale_reason_older_than_max_age():
    reason = stale_reason(owner(controller="ctl-b", seconds_ago=7200), owner(run_id="me"), NOW, 3600, alive)
    assert reason == "it is 7200 s old, more than lock_max_age (3600 s)"


def test_stale_reason_exactly_max_age_is_not_stale():
    assert stale_reason(owner(controller="ctl-b", seconds_ago=3600), owner(run_id="me"), NOW, 3600, alive) is None


def test_stale_reason_max_age_zero_disables_the_age_check():
    assert stale_reason(owner(controller="ctl-b", seconds_ago=10 ** 6), owner(run_id="me"), NOW, 0, alive) is None


def test_stale_reason_unparsable_taken_at_is_not_stale_by_age():
    held = owner(controller="ctl-b", taken_at="yesterday")
    assert stale_reason(held, owner(run_id="me"), NOW, 1, alive) is None


def test_pid_alive_for_this_process_and_a_finished_one():
    assert pid_alive(os.getpid()) is True
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    assert pid_alive(pid) is False


# -- read_lock -------------------------------------------------------------------------------
def test_read_lock_missing_is_none(tmp_path):
    assert read_lock(str(tmp_path / "lock")) is None


@pytest.mark.parametrize("content", ["", "{\"run_id\": \"x\"", "not json"])
def test_read_lock_torn_or_garbage_is_corrupt(tmp_path, content):
    path = tmp_path / "lock"
    path.write_text(content)
    assert read_lock(str(path)) == {"run_id": "unreadable", "corrupt": True}


def test_lock_path_refuses_a_traversing_stack(tmp_path):
    with pytest.raises(NameError_):
        lock_path(str(tmp_path), "../x")


# -- acquire ---------------------------------------------------------------------------------
def test_acquire_fresh_writes_owner_with_mode_0600(tmp_path):
    me = now_owner(run_id="me")
    assert acquire(str(tmp_path), "shop", me, 3600) == (True, None, None)
    path = lock_path(str(tmp_path), "shop")
    assert read_lock(path) == me
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700


def test_acquire_by_the_same_run_is_not_changed(tmp_path):
    me = now_owner(run_id="me")
    acquire(str(tmp_path), "shop", me, 3600)
    changed, previous, note = acquire(str(tmp_path), "shop", dict(me, operation="other"), 3600)
    assert changed is False
    assert previous == me
    assert note == "already held by this run"


def test_acquire_held_by_a_live_other_run_raises_naming_owner_and_remedy(tmp_path):
    held = now_owner(run_id="run-other", controller="ctl-b", who="bob")
    path = write_lock(tmp_path, "shop", held)
    with pytest.raises(LockError) as info:
        acquire(str(tmp_path), "shop", now_owner(run_id="me"), 3600)
    message = str(info.value)
    assert "stack shop is locked by run run-other (rollback) by bob from ctl-b, pid 1234" in message
    assert path in message
    assert "break_lock=true" in message
    assert read_lock(path) == held


def test_acquire_takes_over_a_stale_lock_with_a_note(tmp_path, monkeypatch):
    monkeypatch.setattr(_lock, "pid_alive", dead)
    held = now_owner(run_id="run-dead")
    path = write_lock(tmp_path, "shop", held)
    me = now_owner(run_id="me", pid=99)
    changed, previous, note = acquire(str(tmp_path), "shop", me, 3600)
    assert changed is True
    assert previous == held
    assert note.startswith("took over a stale lock of run run-dead")
    assert note.endswith("no longer runs")
    assert read_lock(path) == me
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_acquire_takes_over_an_old_lock(tmp_path):
    write_lock(tmp_path, "shop", now_owner(run_id="old", controller="ctl-b", seconds_ago=7200))
    changed, _previous, note = acquire(str(tmp_path), "shop", now_owner(run_id="me"), 3600)
    assert changed is True
    assert "more than lock_max_age (3600 s)" in note


def test_acquire_takes_over_a_corrupt_lock(tmp_path):
    path = write_lock(tmp_path, "shop", "")
    me = now_owner(run_id="me")
    changed, previous, note = acquire(str(tmp_path), "shop", me, 3600)
    assert changed is True and previous["corrupt"] is True
    assert "unreadable" in note
    assert read_lock(path) == me


def test_acquire_break_lock_takes_a_live_lock(tmp_path):
    path = write_lock(tmp_path, "shop", now_owner(run_id="live", controller="ctl-b"))
    me = now_owner(run_id="me")
    changed, previous, note = acquire(str(tmp_path), "shop", me, 3600, break_lock=True)
    assert changed is True and previous["run_id"] == "live"
    assert note.endswith(": break_lock was set")
    assert read_lock(path) == me


def test_acquire_check_mode_writes_nothing_when_free(tmp_path):
    assert acquire(str(tmp_path), "shop", now_owner(run_id="me"), 3600, check_mode=True) == (True, None, None)
    assert os.listdir(tmp_path) == []


def test_acquire_check_mode_leaves_a_stale_lock_in_place(tmp_path):
    held = now_owner(run_id="old", controller="ctl-b", seconds_ago=7200)
    path = write_lock(tmp_path, "shop", held)
    changed, _previous, note = acquire(str(tmp_path), "shop", now_owner(run_id="me"), 3600, check_mode=True)
    assert changed is True and note
    assert read_lock(path) == held


def test_acquire_check_mode_still_refuses_a_live_lock(tmp_path):
    write_lock(tmp_path, "shop", now_owner(run_id="live", controller="ctl-b"))
    with pytest.raises(LockError):
        acquire(str(tmp_path), "shop", now_owner(run_id="me"), 3600, check_mode=True)


def test_acquire_never_deletes_a_lock_taken_by_another_run_during_takeover(tmp_path, monkeypatch):
    stale = now_owner(run_id="old", controller="ctl-b", seconds_ago=7200)
    other = now_owner(run_id="other", controller="ctl-b")
    path = write_lock(tmp_path, "shop", other)  # the other run already took over the stale lock ...
    reads = []
    real_read_lock = _lock.read_lock

    def first_read_is_stale(lock_file):  # ... after this run read it (later reads see the file)
        reads.append(lock_file)
        return stale if len(reads) == 1 else real_read_lock(lock_file)

    monkeypatch.setattr(_lock, "read_lock", first_read_is_stale)
    try:
        acquire(str(tmp_path), "shop", now_owner(run_id="me"), 3600)
    except LockError:
        pass
    with open(path) as handle:
        assert json.load(handle)["run_id"] == "other"


# -- release ---------------------------------------------------------------------------------
def test_release_by_owner_removes_the_lock(tmp_path):
    me = now_owner(run_id="me")
    acquire(str(tmp_path), "shop", me, 3600)
    assert release(str(tmp_path), "shop", "me") is True
    assert not os.path.exists(lock_path(str(tmp_path), "shop"))


def test_release_by_another_run_leaves_the_lock(tmp_path):
    path = write_lock(tmp_path, "shop", now_owner(run_id="owner"))
    assert release(str(tmp_path), "shop", "me") is False
    assert read_lock(path)["run_id"] == "owner"


def test_release_without_a_lock_is_not_changed(tmp_path):
    assert release(str(tmp_path), "shop", "me") is False


def test_release_check_mode_keeps_the_lock(tmp_path):
    path = write_lock(tmp_path, "shop", now_owner(run_id="me"))
    assert release(str(tmp_path), "shop", "me", check_mode=True) is True
    assert os.path.exists(path)
