"""Recreate rollbacks through ansible-playbook on the real engine, asserting on what the
engine, the app, PostgreSQL and the state files say afterwards."""
import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_run import ROOT, run_playbook
from stack import SECRET_PREFIX, docker, record

PLAYBOOK = "ops.rollback.rollback"


def rollback(stack, **extra):
    extra.setdefault("backup_volumes", False)
    return run_playbook(PLAYBOOK, stack.vars(**extra), json_output=False)


def output(run):
    """stdout and stderr with the callback's line folding undone, for phrase searches."""
    return " ".join((run.stdout + run.stderr).split())


def test_previous_twice_goes_further_back_without_losing_rows(stack):
    stack.deploy("v3")
    record(stack, "v3")
    rows = stack.rows()
    first = rollback(stack, confirm="ROLLBACK", backup_volumes=True, reason="it: first")
    assert first.rc == 0, output(first)[-6000:]
    assert stack.version() == "v2"
    assert stack.containers()["web"][1] == stack.release("v2")["services"]["web"]["image_id"]
    second = rollback(stack, confirm="ROLLBACK", reason="it: second")
    assert second.rc == 0, output(second)[-6000:]
    assert stack.version() == "v1"
    assert stack.rows() == rows
    history = stack.history()
    assert [h["status"] for h in history] == ["succeeded", "succeeded"]
    assert [h["to"] for h in history] == [stack.release("v2")["id"], stack.release("v1")["id"]]
    assert stack.release("v3")["status"] == "rolled-back" and stack.release("v2")["status"] == "rolled-back"
    assert not stack.lock_exists()


def test_rollback_to_current_release_is_no_change(unchanged_stack):
    stack = unchanged_stack
    run = run_playbook(PLAYBOOK, stack.vars(target="v2", confirm="ROLLBACK"), json_output=True)
    assert run.rc == 0, run.stdout[-5000:]
    assert run.stats["localhost"]["changed"] == 0
    assert stack.history() == []


def test_check_mode_and_missing_confirmation_change_nothing(unchanged_stack):
    stack = unchanged_stack
    before = stack.snapshot()
    dry = run_playbook(PLAYBOOK, stack.vars(), check=True, json_output=False)
    assert dry.rc == 0, output(dry)[-5000:]
    assert "Dry run" in dry.stdout and "~ web: ops-rollback-test/app:v2" in output(dry)
    assert SECRET_PREFIX not in output(dry)
    unconfirmed = rollback(stack)
    assert unconfirmed.rc != 0
    assert "Not confirmed, nothing was changed" in output(unconfirmed) and "confirm=ROLLBACK" in output(unconfirmed)
    assert stack.snapshot() == before
    assert stack.history() == [] and not stack.lock_exists()


def test_unhealthy_target_is_recovered_and_recorded(stack):
    stack.deploy("v3", unhealthy=True, wait=False)
    record(stack, "v3-broken", verify=False)
    stack.deploy("v2")
    record(stack, "v2")
    rows = stack.rows()
    run = rollback(stack, target="v3-broken", confirm="ROLLBACK", wait_timeout=20)
    assert run.rc != 0
    text = output(run)
    assert "FAILED at step" in text and "is back and verified healthy" in text, text[-6000:]
    assert "Backup taken before the rollback: %s/%s/" % (stack.backup_root, stack.name) in text
    assert stack.version() == "v2"
    assert stack.containers()["web"][1] == stack.release("v2")["services"]["web"]["image_id"]
    assert stack.rows() == rows
    last = stack.history()[-1]
    assert last["status"] == "failed" and last["recovered"] is True and last["failed_step"].startswith("Execute")
    assert stack.release("v3-broken")["status"] == "failed"
    assert stack.ledger()["current"] == stack.release("v2")["id"]
    assert SECRET_PREFIX not in text


def test_missing_target_image_fails_before_any_change(stack):
    build = subprocess.run(["docker", "build", "-q", "-t", "ops-rollback-test/app-gone:v9", "-"], input=(
        "FROM ops-rollback-test/app:v1\nLABEL ops.rollback.test=gone\n"), text=True, capture_output=True,
        env=dict(os.environ, DOCKER_BUILDKIT="0"), check=True)
    gone_id = build.stdout.strip()
    stack.deploy("v9", image="ops-rollback-test/app-gone")
    record(stack, "v9")
    stack.deploy("v2")
    record(stack, "v2")
    tags = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "--filter", "reference=ops-rollback/opsrbit_web").stdout.split()
    docker("image", "rm", "ops-rollback-test/app-gone:v9", *[t for t in tags if t.endswith(stack.release("v9")["id"])])
    assert docker("image", "inspect", gone_id, check=False).returncode != 0
    before = stack.snapshot()
    run = rollback(stack, target="v9", confirm="ROLLBACK")
    assert run.rc != 0
    assert "refused, nothing was changed" in output(run) and "image of service web is not present" in output(run)
    assert stack.snapshot() == before and stack.history() == [] and not stack.lock_exists()


@pytest.mark.parametrize(("extra", "expected"), [
    ({"target": "no-such-release"}, "is not a release ID, ID prefix or version label"),
    ({"target": "../../etc"}, "Invalid input"),
    ({"stack": "../opsrbro"}, "Invalid input"),
    ({"stack": "opsrbro;rm -rf /"}, "Invalid input"),
    ({"project_dir": "/nonexistent/ops-rollback"}, "project_dir /nonexistent/ops-rollback does not exist"),
    ({"project_dir": None}, "project_dir"),
    ({"wait_timeout": "soon"}, "wait_timeout"),
    ({"strategy": "yolo"}, "strategy"),
])
def test_bad_input_is_refused_before_any_change(unchanged_stack, extra, expected):
    stack = unchanged_stack
    before = stack.snapshot()
    variables = stack.vars(confirm="ROLLBACK", **{k: v for k, v in extra.items() if v is not None})
    for key in [k for k, v in extra.items() if v is None]:
        variables.pop(key)
    run = run_playbook(PLAYBOOK, variables, json_output=False)
    assert run.rc != 0
    assert expected in output(run), output(run)[-4000:]
    assert stack.snapshot() == before and stack.history() == [] and not stack.lock_exists()


def test_sigkill_during_execute_then_rerun_converges(stack):
    ledger_path = os.path.join(stack.state_dir, stack.name, "ledger.json")
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), PLAYBOOK,
            "-i", os.path.join(ROOT, "tests", "integration", "inventory.yml"),
            "-e", __import__("json").dumps(stack.vars(confirm="ROLLBACK", backup_volumes=False))]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        with open(ledger_path) as handle:
            if '"in_progress"' in handle.read():
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the rollback ended before the execute step began"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert stack.lock_exists()
    rerun = rollback(stack, confirm="ROLLBACK")
    assert rerun.rc == 0, output(rerun)[-6000:]
    assert "took over a stale lock" in output(rerun)
    assert stack.version() == "v1"
    assert stack.containers()["web"][1] == stack.release("v1")["services"]["web"]["image_id"]
    assert stack.rows().startswith("1000:")
    assert not stack.lock_exists() and "in_progress" not in stack.ledger()
    assert stack.history()[-1]["status"] == "succeeded"
