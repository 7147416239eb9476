"""SIGKILL of ansible-playbook at 10 points of a blue-green rollback behind a real Caddy (Debian's
2.6.2), then the same command again.

One stack (opsfault-bg: the shared PostgreSQL with 1,000 seeded rows, web in the blue/green
color projects, Caddy run from a Caddyfile whose upstream is an imported snippet) is shared
by the cases, which run in order: each rolls back from the release that serves (v1 or v2) to
the other one with an explicit target, is killed at its point, and is run again. Every point
expects the target: before the switch the run is done again; after it, the re-run finds the
target serving and completes the record (at 09 the re-run also retires the old color that the
killed run left running). Each case then asserts what is really there: the
version served through Caddy, Caddy's live upstream and the snippet, the active color's
image, the idle color stopped, the same PostgreSQL container and rows (count and md5), the
lock released, the ledger on the target and one history entry that says succeeded.
"""
import pytest

from ansible_run import run_playbook
from bg_helpers import BlueGreen, BlueGreenStack, idle
from caddy_helpers import DEBIAN_CADDY, require_caddy
from kill_helpers import KillPoint, assert_recorded, run_and_kill

PLAYBOOK = "ops.rollback.rollback"
NAME = "opsfault-bg"
PORTS = (18810, 18811)
SWITCH = "ops.rollback.blue_green_switch : "

# (id, banner to kill at, wait after the banner until the target color runs)
POINTS = [
    ("01-plan-done", "Plan | Show the impact", False),
    ("02-backup-starting", "ops.rollback.backup : Back up stack", False),
    ("03-before-execute", "Execute | Put the target release in place", False),
    ("04-switch-preflight", SWITCH + "Proxy | Check that Caddy answers", False),
    ("05-color-starting", SWITCH + "Start | Start the release in the idle color", True),
    ("06-color-up-unverified", "Verify | Check the new color on its own ports", False),  # include_role: no prefix
    ("07-before-caddy-write", SWITCH + "Switch | Point Caddy at the new color", False),
    ("08-caddy-switched", SWITCH + "Verify | Check the site through Caddy", False),
    ("09-state-recorded", SWITCH + "Retire | Stop the old color", False),
    ("10-before-record", "Record | Write the history entry and the report", False),
]


@pytest.fixture(scope="module")
def bg_env():
    env = BlueGreen(require_caddy(DEBIAN_CADDY), NAME)
    env.stack = BlueGreenStack(NAME, PORTS[0], PORTS[1], env.base)
    try:
        env.setup()
        for label in ("v1", "v2"):
            switch = env.switch(env.record(label, label))
            assert switch.rc == 0, switch.text
        env.seeded_rows = env.stack.rows()
        assert env.seeded_rows.startswith("1000:"), env.seeded_rows
        yield env
    finally:
        env.close()


def rollback_vars(bg, target):
    return bg.rollback_vars(
        target=target, reason="faults: SIGKILL then re-run",
        health_urls=[{"url": bg.caddy.proxy_url + "/health", "status": 200, "retries": 5}],
        integrity_checks=[{"name": "items", "service": "db",
                           "argv": ["psql", "-U", "postgres", "-d", "app", "-tAc", "SELECT count(*) FROM items"]}])


def known_start(bg):
    """The version served (v1 or v2); an earlier case that left the stack elsewhere is
    repaired with a forced rollback to v1 (that case has failed already)."""
    version = bg.served()
    ledger = bg.stack.ledger()
    if bg.stack.lock_exists() or "in_progress" in ledger or version not in ("v1", "v2") \
            or ledger["current"] != bg.stack.release(version)["id"]:
        repair = run_playbook(PLAYBOOK, dict(rollback_vars(bg, "v1"), break_lock=True), json_output=False, timeout=600)
        assert repair.rc == 0, "could not repair the shared stack: " + repair.stdout[-4000:]
        version = bg.served()
    return version


CASES = [p if hasattr(p, "marks") else pytest.param(*p, id=p[0]) for p in POINTS]


@pytest.mark.parametrize("ident,task,wait_color", CASES)
def test_sigkill_then_rerun_converges(bg_env, ident, task, wait_color):
    bg, stack = bg_env, bg_env.stack
    origin = known_start(bg)
    target = "v1" if origin == "v2" else "v2"
    origin_id, target_id = stack.release(origin)["id"], stack.release(target)["id"]
    origin_color = bg.active()
    target_color = idle(origin_color)
    db_before = stack.containers()["db"]
    assert stack.rows() == bg.seeded_rows
    history_before = len(stack.history())
    variables = rollback_vars(bg, target)

    also = (lambda: bool(stack.running(target_color))) if wait_color else None
    killed = run_and_kill(PLAYBOOK, variables, KillPoint(ident, task, "target", also=also), timeout=600,
                          log_name="blue-green-" + ident)
    assert killed.killed, "the run ended (rc %s) before reaching %r:\n%s" % (killed.rc, task, killed.text[-4000:])
    assert stack.lock_exists(), "no lock left by a run killed at %s" % ident

    rerun = run_playbook(PLAYBOOK, variables, json_output=False, timeout=600)
    text = " ".join((rerun.stdout + rerun.stderr).split())
    assert rerun.rc == 0, "re-run after SIGKILL at %s failed:\n%s" % (ident, text[-6000:])
    assert "took over a stale lock" in text, text[-4000:]

    # the real system: Caddy serves the target from the active color, the other one is stopped
    assert bg.served() == target
    color = bg.active()
    web = stack.running(color).get("web")
    assert web and web["image_id"] == stack.image_id(target), (color, web)
    assert bg.caddy.dial() == bg.dial_of(color)
    assert bg.caddy.snippet_tokens() == ["to", bg.dial_of(color)], bg.caddy.snippet_text()
    assert stack.wait_idle_stopped(idle(color)) == {}, "the idle color still runs"
    assert stack.containers()["db"] == db_before, "the database container was replaced"
    assert stack.rows() == bg.seeded_rows, "PostgreSQL rows changed"
    # the state: lock released, ledger on the target, one history entry saying what happened
    assert_recorded(stack, origin_id, target_id, history_before, "blue_green")
