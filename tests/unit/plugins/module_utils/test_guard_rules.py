# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The scheduled guard's rules (_guard.decide and the rollback bookkeeping), one test each."""

from __future__ import annotations

import datetime
import os
import stat

import pytest

from ansible_collections.ops.rollback.plugins.module_utils._guard import (
    decide,
    finish_rollback,
    last_auto_rollback_at,
    last_known_good,
    load_state,
    redact,
    save_state,
    start_rollback,
    state_path,
)

NOW = datetime.datetime(2026, 12, 2, 12, 0, 0, tzinfo=datetime.timezone.utc)
SETTINGS = {"failures_before_rollback": 3, "auto_rollback": True, "cooldown": 3600}


def ago(seconds):
    return (NOW - datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ledger(statuses=("healthy", "healthy", "unverified"), current=None, **extra):
    releases = [{"id": "r%d" % i, "version": "v%d" % (i + 1), "status": s, "services": {}, "files": [],
                 "compose_files": [], "migrations": {}, "backups": []} for i, s in enumerate(statuses)]
    data = {"stack": "shop", "current": current or releases[-1]["id"], "releases": releases}
    data.update(extra)
    return data


def check(state=None, passed=False, data=None, settings=None, **kwargs):
    return decide(state or {}, passed, kwargs.pop("failed_checks", ["http http://127.0.0.1:8080/health"]),
                  kwargs.pop("now", NOW), dict(SETTINGS, **(settings or {})), data or ledger(), **kwargs)


def run_checks(n, state=None, **kwargs):
    out = None
    state = state or {}
    for _run in range(n):
        state, out = check(state, **kwargs)
    return state, out


# -- rule 1: a lock or an interrupted rollback -------------------------------------------
def test_held_lock_skips_without_counting_and_names_the_owner():
    state = {"release": "r2", "consecutive_failures": 2}
    new, out = check(state, lock_owner={"run_id": "x"}, lock_note="run x (rollback) by alice")
    assert out["decision"] == "locked" and not out["counted"] and not out["notify"]
    assert new == state
    assert "locked by run x (rollback) by alice" in out["msg"] and "left alone" in out["msg"]


def test_held_lock_wins_over_a_passed_check_too():
    state = {"release": "r2", "consecutive_failures": 2}
    new, out = check(state, passed=True, lock_owner={"run_id": "x"})
    assert out["decision"] == "locked" and new == state


def test_interrupted_rollback_in_ledger_is_left_to_a_human():
    new, out = check({}, data=ledger(in_progress={"from": "r2", "to": "r1"}))
    assert out["decision"] == "locked" and "interrupted rollback (r2 -> r1)" in out["msg"]
    assert new == {}


# -- rule 2: healthy ---------------------------------------------------------------------------
def test_passed_check_resets_the_counter():
    new, out = check({"release": "r2", "consecutive_failures": 2, "alerted": "report_only"}, passed=True)
    assert out["decision"] == "healthy" and new["consecutive_failures"] == 0 and new["alerted"] is None
    assert new["last_check_at"] == "2026-12-02T12:00:00Z"


# -- rule 3: counting per release -------------------------------------------------------------
def test_failures_count_up_on_the_same_release():
    new, out = run_checks(2)
    assert out["decision"] == "failing" and out["consecutive_failures"] == 2 and new["release"] == "r2"
    assert "2 failure(s) in a row of 3" in out["msg"]


def test_counter_restarts_when_another_release_runs():
    new, out = check({"release": "r1", "consecutive_failures": 2, "first_failure_at": ago(600)})
    assert out["consecutive_failures"] == 1 and new["release"] == "r2" and new["first_failure_at"] == ago(0)


def test_running_release_id_takes_precedence_over_the_ledger_current():
    new, out = check({"release": "r2", "consecutive_failures": 2}, running_id="newone")
    assert out["consecutive_failures"] == 1 and new["release"] == "newone"


# -- rule 4: threshold ------------------------------------------------------------------------
def test_below_threshold_no_rollback_and_at_threshold_rollback():
    _state, out = run_checks(2)
    assert out["decision"] == "failing" and out["target"] is None
    _state, out = run_checks(3)
    assert out["decision"] == "rollback" and out["target"]["id"] == "r1" and out["notify"]


def test_threshold_of_one_acts_on_the_first_failure():
    _state, out = check({}, settings={"failures_before_rollback": 1})
    assert out["decision"] == "rollback"


# -- rule 5: the target -------------------------------------------------------------------------
def test_never_a_failed_release():
    _state, out = run_checks(3, data=ledger(("healthy", "failed", "unverified")))
    assert out["decision"] == "rollback" and out["target"]["id"] == "r0"


def test_never_a_rolled_back_or_unverified_release():
    _state, out = run_checks(3, data=ledger(("failed", "rolled-back", "unverified", "unverified")))
    assert out["decision"] == "no_target" and out["target"] is None
    assert "no known-good release" in out["msg"] and "r1 (v2) rolled-back" in out["msg"]


def test_never_a_release_deployed_after_the_running_one():
    data = ledger(("healthy", "healthy", "healthy"), current="r1")
    assert last_known_good(data)["id"] == "r0"


def test_unrecorded_running_state_counts_as_the_newest_release():
    running = {"id": "fresh", "services": {}, "files": [], "compose_files": [], "migrations": {}}
    data = ledger(("healthy", "healthy"))
    assert last_known_good(data, running)["id"] == "r1"
    assert data["current"] == "r1" and len(data["releases"]) == 2  # the ledger itself is untouched


def test_no_current_release_and_nothing_running_known_gives_no_target():
    assert last_known_good({"stack": "shop", "current": None, "releases": []}) is None


# -- rule 6: report only ------------------------------------------------------------------------
def test_auto_rollback_false_only_reports_the_would_be_target():
    _state, out = run_checks(3, settings={"auto_rollback": False})
    assert out["decision"] == "report_only"
    assert "Would roll back to r1 (v2)" in out["msg"] and "guard_auto_rollback is false" in out["msg"]


# -- rule 7: cooldown --------------------------------------------------------------------------
def test_cooldown_from_the_guard_state():
    state = {"release": "r2", "consecutive_failures": 5,
             "last_auto_rollback": {"rollback_id": "a", "at": ago(600), "outcome": "succeeded"}}
    _new, out = check(state)
    assert out["decision"] == "cooldown" and "2026-12-02T11:50:00Z" in out["msg"]


def test_cooldown_from_the_history_when_the_state_file_was_lost():
    _new, out = run_checks(3, history=[{"reason": "guard", "started_at": ago(100)}])
    assert out["decision"] == "cooldown"


def test_human_rollbacks_in_history_do_not_hold_the_cooldown():
    _new, out = run_checks(3, history=[{"reason": "checkout errors", "started_at": ago(100)}])
    assert out["decision"] == "rollback"


def test_cooldown_expires():
    state = {"last_auto_rollback": {"rollback_id": "a", "at": ago(3601), "outcome": "failed"}}
    _new, out = run_checks(3, state=state)
    assert out["decision"] == "rollback"


def test_started_attempt_holds_the_cooldown_refused_and_locked_do_not():
    for outcome, cooling in (("started", True), ("succeeded", True), ("failed", True), ("refused", False), ("locked", False)):
        state = {"last_auto_rollback": {"rollback_id": "a", "at": ago(10), "outcome": outcome}}
        assert (last_auto_rollback_at(state, []) is not None) is cooling, outcome


def test_cooldown_zero_allows_a_rollback_every_time():
    state = {"last_auto_rollback": {"rollback_id": "a", "at": ago(0), "outcome": "succeeded"}}
    _new, out = run_checks(3, state=state, settings={"cooldown": 0})
    assert out["decision"] == "rollback"


# -- notifications ------------------------------------------------------------------------------
def test_each_alert_is_notified_once_per_streak():
    state, out = run_checks(3, settings={"auto_rollback": False})
    assert out["notify"] and state["alerted"] == "report_only"
    state, out = check(state, settings={"auto_rollback": False})
    assert out["decision"] == "report_only" and not out["notify"]
    state, out = check(state, passed=True)
    state, out = run_checks(3, state=state, settings={"auto_rollback": False})
    assert out["notify"]


def test_below_threshold_is_not_notified():
    _state, out = run_checks(2)
    assert not out["notify"]


def test_failed_check_names_lose_credentials_and_query():
    assert redact("http https://user:pw@example.com/health?token=abc#x") == "http https://example.com/health"
    _state, out = check({}, failed_checks=["http http://u:p@127.0.0.1/h?k=v", "running"])
    assert out["failed_checks"] == ["http http://127.0.0.1/h", "running"]


# -- the automatic rollback's bookkeeping --------------------------------------------------------
def test_start_then_success_resets_the_streak_on_the_target():
    state = start_rollback({"release": "r2", "consecutive_failures": 3}, "rb1", NOW, "r2", "r1")
    assert state["last_auto_rollback"] == {"rollback_id": "rb1", "at": ago(0), "from": "r2", "to": "r1", "outcome": "started"}
    state = finish_rollback(state, "rb1", "succeeded", NOW)
    assert state["consecutive_failures"] == 0 and state["release"] == "r1"
    assert state["last_auto_rollback"]["outcome"] == "succeeded"


def test_failed_rollback_keeps_the_streak_and_the_cooldown():
    state = start_rollback({"release": "r2", "consecutive_failures": 3}, "rb1", NOW, "r2", "r1")
    state = finish_rollback(state, "rb1", "failed", NOW)
    assert state["consecutive_failures"] == 3
    _new, out = check(state)
    assert out["decision"] == "cooldown"


def test_finish_refuses_another_runs_rollback_and_unknown_outcomes():
    state = start_rollback({}, "rb1", NOW, "r2", "r1")
    with pytest.raises(ValueError, match="not the guard's last"):
        finish_rollback(state, "rb2", "failed", NOW)
    with pytest.raises(ValueError, match="outcome"):
        finish_rollback(state, "rb1", "maybe", NOW)


# -- the state file ---------------------------------------------------------------------------------
def test_state_file_is_private_and_round_trips(tmp_path):
    state_dir = str(tmp_path / "state")
    assert load_state(state_dir, "shop") == {}
    save_state(state_dir, "shop", {"consecutive_failures": 2})
    path = state_path(state_dir, "shop")
    assert load_state(state_dir, "shop") == {"consecutive_failures": 2}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert [n for n in os.listdir(os.path.dirname(path)) if n != "guard.json"] == []  # no temporary left


def test_state_path_refuses_a_traversal():
    with pytest.raises(ValueError):
        state_path("/tmp/x", "../etc")
