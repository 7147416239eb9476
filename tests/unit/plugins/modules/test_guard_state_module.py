# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""guard_state as Ansible runs it, on state files in a temporary directory (no project_dir,
so the ledger's current release counts as the running one; the Docker side is covered by
tests/integration/guard)."""

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ops.rollback.plugins.module_utils._lock import acquire
from ansible_collections.ops.rollback.plugins.module_utils._releases import save_ledger
from ansible_collections.ops.rollback.plugins.modules import guard_state


def run_module(args, capsys, check_mode=False):
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            guard_state.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def state_dir(tmp_path):
    path = str(tmp_path / "state")
    save_ledger(path, "shop", {"stack": "shop", "current": "r2", "releases": [
        {"id": "r1", "version": "v1", "status": "healthy", "services": {}, "backups": []},
        {"id": "r2", "version": "v2", "status": "unverified", "services": {}, "backups": []}]})
    return path


def args(state_dir, **extra):
    base = {"project_name": "shop", "state_dir": state_dir, "passed": False, "failed_checks": ["running"],
            "failures_before_rollback": 2, "auto_rollback": True, "cooldown": 3600, "rollback_id": "rb-1"}
    base.update(extra)
    return base


def guard_json(state_dir):
    with open(os.path.join(state_dir, "shop", "guard.json")) as handle:
        return json.load(handle)


def test_counts_decides_and_records_the_attempt(state_dir, capsys):
    first = run_module(args(state_dir), capsys)
    assert first["decision"] == "failing" and first["changed"] and guard_json(state_dir)["consecutive_failures"] == 1
    second = run_module(args(state_dir), capsys)
    assert second["decision"] == "rollback" and second["target"]["id"] == "r1" and second["target"]["status"] == "healthy"
    assert guard_json(state_dir)["last_auto_rollback"]["outcome"] == "started"
    done = run_module(args(state_dir, event="finished", outcome="succeeded"), capsys)
    assert done["changed"] and guard_json(state_dir)["last_auto_rollback"]["outcome"] == "succeeded"


def test_check_mode_writes_nothing(state_dir, capsys):
    result = run_module(args(state_dir, failures_before_rollback=1), capsys, check_mode=True)
    assert result["decision"] == "rollback" and result["changed"]
    assert not os.path.exists(os.path.join(state_dir, "shop", "guard.json"))


def test_reads_the_lock_and_leaves_it(state_dir, capsys):
    acquire(state_dir, "shop", {"run_id": "human-1", "operation": "rollback", "who": "alice",
                                "controller": "elsewhere", "controller_pid": 1, "taken_at": "2099-01-01T00:00:00Z"}, 0)
    lock = os.path.join(state_dir, "shop", "lock")
    before = open(lock).read()
    result = run_module(args(state_dir, failures_before_rollback=1), capsys)
    assert result["decision"] == "locked" and not result["changed"] and "human-1" in result["msg"]
    assert open(lock).read() == before


@pytest.mark.parametrize("extra, message", [
    ({"failures_before_rollback": 0}, "failures_before_rollback=0 must be 1 or more"),
    ({"cooldown": -1}, "cooldown=-1 must be 0 or more"),
    ({"project_name": "../etc"}, "project_name='../etc' is not allowed"),
    ({"event": "finished"}, "needs rollback_id and outcome"),
])
def test_bad_input_is_refused_naming_the_option(state_dir, capsys, extra, message):
    a = args(state_dir, **extra)
    if extra.get("event") == "finished":
        a.pop("rollback_id")
    result = run_module(a, capsys)
    assert result["failed"] and message in result["msg"]
    assert not os.path.exists(os.path.join(state_dir, "shop", "guard.json"))
