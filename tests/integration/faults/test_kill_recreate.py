"""SIGKILL of ansible-playbook at 10 points of a recreate rollback, then the same command again.

One stack (opsfault-rc: PostgreSQL with 1,000 seeded rows, and the web app) is shared by the
cases, which run in order: each rolls the stack from the release it runs (v1 or v2) to the
other one with an explicit target, is killed at its point, and is run again. Each must end on
the target release (every point below expects the target: a run killed before the execute
step is simply done again, one killed inside it is resumed from the ledger's in_progress
marker, one killed after the record finds the target already current), healthy, with the
same PostgreSQL rows (count and md5), the lock released and one history entry that says
succeeded, from the origin to the target.
"""
import json
import os

import pytest

from ansible_run import run_playbook
from kill_helpers import KillPoint, assert_recorded, run_and_kill
from stack import Stack, record

PLAYBOOK = "ops.rollback.rollback"
NAME = "opsfault-rc"
PORT = 18800


def _in_progress(stack):
    def check():
        try:
            with open(os.path.join(stack.state_dir, stack.name, "ledger.json"), encoding="utf-8") as handle:
                return "in_progress" in json.load(handle)
        except (OSError, ValueError):
            return False
    return check


# (id, banner to kill at, nth banner of that name, needs the ledger's in_progress marker).
# Point 01 kills only the process group, so the worker that runs the lock task finishes it as
# an orphan (see kill_helpers); the others kill the whole process tree.
ORPHAN = "01-lock-task-orphaned-worker"
POINTS = [
    (ORPHAN, "Lock | Take the stack's lock", 1, False),
    ("02-lock-held", "Plan | Choose the target, validate it and work out the impact", 1, False),
    ("03-plan-done", "Plan | Show the impact", 1, False),
    ("04-backup-starting", "ops.rollback.backup : Back up stack", 1, False),
    ("05-backup-done", "ops.rollback.backup : Fetch the backup to the controller", 1, False),
    ("06-execute-compose-up", "Execute | Put the release in place and start it", 1, True),
    ("07-after-up", "Execute | Restore the data of the target release", 1, False),
    ("08-verify-running", "ops.rollback.verify : Run the checks on Compose project", 2, False),
    ("09-before-record", "Record | Write the history entry and the report", 1, False),
    ("10-recorded-lock-held", "Record | Say what was done", 1, False),
]


@pytest.fixture(scope="module")
def rc_stack():
    stack = Stack(NAME, PORT, "/tmp/ops-rollback-it-" + NAME)
    try:
        stack.create()
        stack.deploy("v1")
        stack.seed()
        record(stack, "v1")
        stack.deploy("v2")
        record(stack, "v2")
        stack.seeded_rows = stack.rows()
        assert stack.seeded_rows.startswith("1000:"), stack.seeded_rows
        yield stack
    finally:
        stack.destroy()


def rollback_vars(stack, target):
    return stack.vars(confirm="ROLLBACK", target=target, backup_volumes=False, wait_timeout=60,
                      reason="faults: SIGKILL then re-run")


def known_start(stack):
    """The release the stack runs (v1 or v2), repaired with a forced rollback to v1 when an
    earlier case left it elsewhere (that case has failed already)."""
    version = stack.version(attempts=4)
    if stack.lock_exists() or "in_progress" in stack.ledger() or version not in ("v1", "v2"):
        repair = run_playbook(PLAYBOOK, dict(rollback_vars(stack, "v1"), break_lock=True), json_output=False)
        assert repair.rc == 0, "could not repair the shared stack: " + repair.stdout[-4000:]
        version = stack.version()
    return version


@pytest.mark.parametrize("ident,task,nth,inside", POINTS, ids=[p[0] for p in POINTS])
def test_sigkill_then_rerun_converges(rc_stack, ident, task, nth, inside):
    stack = rc_stack
    origin = known_start(stack)
    target = "v1" if origin == "v2" else "v2"
    origin_id, target_id = stack.release(origin)["id"], stack.release(target)["id"]
    db_before = stack.containers()["db"]
    assert stack.rows() == stack.seeded_rows
    history_before = len(stack.history())
    variables = rollback_vars(stack, target)

    point = KillPoint(ident, task, "target", also=_in_progress(stack) if inside else None, nth=nth, tree=ident != ORPHAN)
    killed = run_and_kill(PLAYBOOK, variables, point, log_name="recreate-" + ident)
    assert killed.killed, "the run ended (rc %s) before reaching %r:\n%s" % (killed.rc, task, killed.text[-4000:])
    lock_left = stack.lock_exists()
    if ident != ORPHAN:
        assert lock_left, "no lock left by a run killed at %s" % ident

    rerun = run_playbook(PLAYBOOK, variables, json_output=False)
    text = " ".join((rerun.stdout + rerun.stderr).split())
    assert rerun.rc == 0, "re-run after SIGKILL at %s failed:\n%s" % (ident, text[-6000:])
    if lock_left:
        assert "took over a stale lock" in text, text[-4000:]

    # the real system: the target runs, healthy, on its recorded image; PostgreSQL untouched
    assert stack.version() == target
    containers = stack.containers()
    assert containers["web"][1] == stack.release(target)["services"]["web"]["image_id"], containers
    assert containers["db"] == db_before, "the database container was replaced"
    assert stack.rows() == stack.seeded_rows, "PostgreSQL rows changed"
    # the state: lock released, ledger on the target, one history entry saying what happened
    assert_recorded(stack, origin_id, target_id, history_before, "recreate")
