# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The scheduled guard's rules: count failed checks, decide whether to roll back.

State of one stack: ``<state_dir>/<stack>/guard.json`` (0600, replaced atomically)::

    {"release": "<id of the release the failures were seen on>",
     "consecutive_failures": 2, "first_failure_at": "...", "last_check_at": "...",
     "last_failed_checks": ["http ..."], "alerted": "report_only",
     "last_auto_rollback": {"rollback_id": "...", "at": "...", "from": "...", "to": "...",
                            "outcome": "started|succeeded|failed|refused|locked"}}

Everything here is pure (plain data in, plain data out) except load_state/save_state.
The rules, in the order decide() applies them:

1. a lock on the stack (a rollback or restore runs, or a killed one left it) or an interrupted
   rollback in the ledger: ``locked``; the check is not counted, nothing is changed;
2. the check passed: ``healthy``; the counter goes back to 0;
3. the check failed: the counter goes up by one; it restarts at 1 when the stack runs another
   release than the one the earlier failures were seen on (a deploy or a rollback happened);
4. fewer than ``failures_before_rollback`` failures in a row: ``failing``;
5. otherwise the target is the last known-good release (the newest release deployed before the
   running one whose status is healthy; never a failed or rolled-back one): none is ``no_target``;
6. ``auto_rollback`` false: ``report_only`` (says which release it would go to);
7. an automatic rollback of the stack started less than ``cooldown`` seconds ago (guard state
   or a history entry with reason ``guard``): ``cooldown``;
8. otherwise ``rollback``.
"""

from __future__ import annotations

import copy
import datetime
import re

from ansible_collections.ops.rollback.plugins.module_utils._names import check_name, child_path
from ansible_collections.ops.rollback.plugins.module_utils._releases import ReleaseError, add_or_touch, select_target
from ansible_collections.ops.rollback.plugins.module_utils._state_files import read_json, write_json_atomic

GUARD_REASON = "guard"
DECISIONS = ("locked", "healthy", "failing", "no_target", "report_only", "cooldown", "rollback")
# Decisions that tell an operator something new; each one is notified once per failure streak.
ALERTS = ("no_target", "report_only", "cooldown")
# Outcomes of an automatic rollback that may have changed the stack: they start the cooldown.
COOLING_OUTCOMES = ("started", "succeeded", "failed")
OUTCOMES = ("succeeded", "failed", "refused", "locked")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def state_path(state_dir, stack):
    return child_path(state_dir, check_name(stack, "stack"), "guard.json")


def load_state(state_dir, stack):
    state = read_json(state_path(state_dir, stack), default=None)
    return state if isinstance(state, dict) else {}


def save_state(state_dir, stack, state):
    write_json_atomic(state_path(state_dir, stack), state)


def stamp(moment):
    return moment.strftime(TIME_FORMAT)


def parse_time(text):
    """A UTC time as the collection writes it, or None."""
    try:
        return datetime.datetime.strptime(text or "", TIME_FORMAT).replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return None


_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?:[^/@\s]*@)?(?P<rest>[^\s?#]*)[^\s]*", re.IGNORECASE)


def redact(text):
    """A check name fit for a notification: URLs lose their user info, query and fragment."""
    return _URL.sub(lambda m: m.group("scheme") + m.group("rest"), str(text))


def last_known_good(ledger, running=None):
    """The release an automatic rollback goes to, or None.

    ``running`` is the snapshot of what runs (id, services, files...): when the ledger does not
    know it yet (a deploy that was never recorded, often because its verification failed), it
    counts as the newest release, exactly as the rollback's plan will record it. Then the
    target is the newest release before it whose status is healthy (select_target's
    ``previous``): never a failed, rolled-back or unverified one.
    """
    ledger = copy.deepcopy(ledger)
    if running is not None:
        add_or_touch(ledger, running)
    try:
        target = select_target(ledger, "previous")
    except ReleaseError:
        return None
    return target if target.get("status") == "healthy" else None


def last_auto_rollback_at(state, history):
    """When the newest automatic rollback of the stack started, or None: the guard's own
    record of its attempts, and the history's entries with reason guard (so a lost state file
    does not lift the cooldown)."""
    times = []
    attempt = state.get("last_auto_rollback") or {}
    if attempt.get("outcome", "started") in COOLING_OUTCOMES:
        times.append(parse_time(attempt.get("at")))
    for entry in history:
        if entry.get("reason") == GUARD_REASON:
            times.append(parse_time(entry.get("started_at")))
    times = [t for t in times if t is not None]
    return max(times) if times else None


def describe_release(release):
    if not release:
        return "none"
    return "%s%s" % (release["id"], " (%s)" % release["version"] if release.get("version") else "")


def decide(state, passed, failed_checks, now, settings, ledger, running_id=None, running=None,
           lock_owner=None, lock_note=None, history=()):
    """Apply the rules to one check. Returns (new_state, decision): decision has ``decision``
    (one of DECISIONS), ``msg``, ``consecutive_failures``, ``target`` (release or None),
    ``counted`` and ``notify``. Nothing is written here.

    settings: failures_before_rollback (>= 1), auto_rollback (bool), cooldown (seconds, >= 0).
    running_id: the ID of the release that runs (its snapshot), None when unknown.
    lock_owner: the stack's lock file content when one exists; lock_note says who holds it.
    """
    stack = ledger.get("stack")
    threshold = settings["failures_before_rollback"]
    new = copy.deepcopy(state)
    release = running_id or ledger.get("current")
    out = {"decision": None, "msg": "", "target": None, "counted": False, "notify": False,
           "consecutive_failures": state.get("consecutive_failures", 0), "threshold": threshold,
           "release": release, "failed_checks": [redact(c) for c in failed_checks]}

    # 1. someone else is at work on the stack
    in_progress = ledger.get("in_progress")
    if lock_owner is not None or in_progress:
        out["decision"] = "locked"
        if lock_owner is not None:
            out["msg"] = ("Stack %s is locked by %s: a rollback or restore holds it. The guard skips this run: "
                          "no rollback, the check is not counted, the lock is left alone." % (stack, lock_note or "another run"))
        else:
            out["msg"] = ("Stack %s has an interrupted rollback (%s -> %s) in its ledger: a human must finish it "
                          "(run ops.rollback.rollback again). The guard skips this run and changes nothing."
                          % (stack, in_progress.get("from"), in_progress.get("to")))
        return state, out

    new["last_check_at"] = stamp(now)
    out["counted"] = True
    # 2. healthy: the streak ends
    if passed:
        new.update({"release": release, "consecutive_failures": 0, "first_failure_at": None,
                    "last_failed_checks": [], "alerted": None})
        out.update(decision="healthy", consecutive_failures=0,
                   msg="Stack %s passed every check; no failures counted." % stack)
        return new, out

    # 3. count the failure, per release
    same_release = state.get("release") == release
    count = (state.get("consecutive_failures", 0) if same_release else 0) + 1
    if not same_release or not state.get("first_failure_at"):
        new["first_failure_at"] = stamp(now)
        new["alerted"] = None
    new.update({"release": release, "consecutive_failures": count, "last_failed_checks": out["failed_checks"]})
    out["consecutive_failures"] = count
    failing = "Stack %s failed its checks (%s): %d failure(s) in a row of %d before a rollback" % (
        stack, ", ".join(out["failed_checks"]) or "no check named", count, threshold)

    # 4. below the threshold
    if count < threshold:
        out.update(decision="failing", msg=failing + "; no rollback yet.")
        return new, out

    # 5. where would it go
    target = last_known_good(ledger, running)
    out["target"] = target
    if target is None:
        out.update(decision="no_target", msg=failing + ". No rollback: no known-good release (status healthy) was "
                   "deployed before the running one; a human must act. Releases: %s" % ", ".join(
                       "%s %s" % (describe_release(r), r.get("status")) for r in ledger.get("releases", [])))
    # 6. report only
    elif not settings["auto_rollback"]:
        out.update(decision="report_only", msg=failing + ". Would roll back to %s, but guard_auto_rollback is false: "
                   "reporting only." % describe_release(target))
    else:
        # 7. cooldown
        last = last_auto_rollback_at(state, history)
        if last is not None and (now - last).total_seconds() < settings["cooldown"]:
            out.update(decision="cooldown", msg=failing + ". No rollback: an automatic rollback of stack %s started at %s, "
                       "less than guard_cooldown (%d s) ago; a human must act." % (stack, stamp(last), settings["cooldown"]))
        # 8. roll back
        else:
            out.update(decision="rollback", msg=failing + ". Rolling back to the last known-good release %s."
                       % describe_release(target))
    if out["decision"] == "rollback":
        out["notify"] = True
    elif new.get("alerted") != out["decision"]:
        out["notify"] = True
        new["alerted"] = out["decision"]
    return new, out


def start_rollback(state, rollback_id, now, from_release, to_release):
    """The state once an automatic rollback begins: the attempt starts the cooldown even if the
    run is killed before it finishes."""
    new = copy.deepcopy(state)
    new["last_auto_rollback"] = {"rollback_id": rollback_id, "at": stamp(now), "from": from_release,
                                 "to": to_release, "outcome": "started"}
    return new


def finish_rollback(state, rollback_id, outcome, now):
    """The state once the automatic rollback ``rollback_id`` ended with ``outcome``.

    ``refused`` (the plan refused the target) and ``locked`` (a human took the lock first)
    changed nothing, so they do not hold the cooldown. A success ends the failure streak."""
    if outcome not in OUTCOMES:
        raise ValueError("outcome=%r is not one of %s" % (outcome, ", ".join(OUTCOMES)))
    new = copy.deepcopy(state)
    attempt = new.get("last_auto_rollback") or {}
    if attempt.get("rollback_id") != rollback_id:
        raise ValueError("rollback %s is not the guard's last automatic rollback (%s)" % (rollback_id, attempt.get("rollback_id")))
    attempt.update(outcome=outcome, ended_at=stamp(now))
    if outcome == "succeeded":
        new.update({"release": attempt.get("to"), "consecutive_failures": 0, "first_failure_at": None,
                    "last_failed_checks": [], "alerted": None})
    return new
