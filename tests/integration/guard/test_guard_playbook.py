"""The scheduled guard (ops.rollback.guard) on a real stack whose v3 is broken for real (its
/health answers 404), asserting on the containers, the app, the history and the state files."""
import datetime
import http.server
import json
import os
import socket
import stat
import threading

import pytest

from ansible_run import run_playbook
from stack import SECRET_PREFIX

from ansible_collections.ops.rollback.plugins.module_utils._lock import acquire
from ansible_collections.ops.rollback.plugins.module_utils._releases import load_ledger, save_ledger, set_status

PLAYBOOK = "ops.rollback.guard"
WEBHOOK_PORT = 18701


def guard(stack, check=False, **extra):
    return run_playbook(PLAYBOOK, stack.vars(**extra), check=check, json_output=False)


def output(run):
    """stdout and stderr with the callback's line folding undone, for phrase searches."""
    return " ".join((run.stdout + run.stderr).split())


def guard_state(stack):
    path = os.path.join(stack.state_dir, stack.name, "guard.json")
    if not os.path.exists(path):
        return None
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as handle:
        return json.load(handle)


def web_image(stack):
    return stack.containers()["web"][1]


@pytest.fixture
def webhook():
    """A local webhook receiver: the JSON bodies POSTed to it, in order."""
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append({"content_type": self.headers.get("Content-Type"), "raw": body.decode("utf-8")})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", WEBHOOK_PORT), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d/hook?token=it-webhook-token" % WEBHOOK_PORT, received
    server.shutdown()
    server.server_close()


def test_threshold_rolls_back_on_the_nth_failure_to_the_last_known_good(stack, webhook):
    url, received = webhook
    broken = web_image(stack)
    settings = dict(guard_auto_rollback=True, guard_failures_before_rollback=3, guard_webhook_url=url)
    for n in (1, 2):
        run = guard(stack, **settings)
        assert run.rc != 0, output(run)[-4000:]
        assert "Guard of stack opsguard: failing." in output(run) and "%d failure(s) in a row of 3" % n in output(run)
        assert web_image(stack) == broken and stack.history() == []
        assert guard_state(stack)["consecutive_failures"] == n
    assert received == []  # below the threshold: no notification

    run = guard(stack, **settings)
    text = output(run)
    assert run.rc == 0, text[-6000:]
    assert "rolled back automatically from" in text
    v2 = stack.release("v2")
    assert web_image(stack) == v2["services"]["web"]["image_id"]
    assert stack.version() == "v2"
    [entry] = stack.history()
    assert entry["reason"] == "guard" and entry["status"] == "succeeded" and entry["to"] == v2["id"]
    assert entry["who"].startswith("ops.rollback.guard")
    ledger = stack.ledger()
    assert ledger["current"] == v2["id"]
    assert [r["status"] for r in ledger["releases"] if r["id"] == entry["from"]] == ["rolled-back"]
    state = guard_state(stack)
    assert state["consecutive_failures"] == 0 and state["last_auto_rollback"]["outcome"] == "succeeded"
    assert not stack.lock_exists()
    [hook] = received
    assert hook["content_type"].startswith("application/json")
    body = json.loads(hook["raw"])
    assert body["decision"] == "rollback" and body["outcome"] == "succeeded" and body["stack"] == "opsguard"
    assert body["target"]["id"] == v2["id"] and body["consecutive_failures"] == 3
    assert SECRET_PREFIX not in hook["raw"] and "it-webhook-token" not in text
    # healthy again: the next run counts nothing and changes nothing
    again = guard(stack, **settings)
    assert again.rc == 0 and "Guard of stack opsguard: healthy." in output(again), output(again)[-4000:]
    assert len(stack.history()) == 1


def test_cooldown_refuses_a_second_automatic_rollback(stack):
    settings = dict(guard_auto_rollback=True, guard_failures_before_rollback=1, guard_cooldown=3600)
    first = guard(stack, **settings)
    assert first.rc == 0, output(first)[-6000:]
    v2_image = stack.release("v2")["services"]["web"]["image_id"]
    assert web_image(stack) == v2_image
    # v2 now fails its check for real (a path it does not serve); v1 would be the next target
    failing_url = [{"url": "http://127.0.0.1:%d/missing" % stack.port, "status": 200, "retries": 1}]
    second = guard(stack, health_urls=failing_url, **settings)
    text = output(second)
    assert second.rc != 0
    assert "Guard of stack opsguard: cooldown." in text and "less than guard_cooldown (3600 s) ago" in text, text[-4000:]
    assert web_image(stack) == v2_image
    assert len(stack.history()) == 1


def test_lock_held_by_a_human_run_is_left_alone(stack):
    me = {"run_id": "human-run-1", "operation": "rollback", "who": "alice", "controller": socket.gethostname(),
          "controller_pid": os.getpid(),
          "taken_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    acquire(stack.state_dir, stack.name, me, max_age=3600)
    lock = os.path.join(stack.state_dir, stack.name, "lock")
    with open(lock, "rb") as handle:
        lock_before = handle.read()
    before = stack.snapshot()
    run = guard(stack, guard_auto_rollback=True, guard_failures_before_rollback=1)
    text = output(run)
    assert run.rc == 0, text[-4000:]
    assert "Guard of stack opsguard: locked." in text and "locked by run human-run-1 (rollback) by alice" in text
    with open(lock, "rb") as handle:
        assert handle.read() == lock_before
    assert stack.snapshot() == before
    assert stack.history() == [] and guard_state(stack) is None


def test_never_rolls_back_to_a_release_marked_failed(stack):
    ledger = load_ledger(stack.state_dir, stack.name)
    set_status(ledger, stack.release("v2")["id"], "failed")  # as a failed rollback to v2 leaves it
    save_ledger(stack.state_dir, stack.name, ledger)
    run = guard(stack, guard_auto_rollback=True, guard_failures_before_rollback=1)
    assert run.rc == 0, output(run)[-6000:]
    v1 = stack.release("v1")
    assert web_image(stack) == v1["services"]["web"]["image_id"] and stack.version() == "v1"
    [entry] = stack.history()
    assert entry["to"] == v1["id"] and entry["reason"] == "guard"


def test_dry_run_and_auto_rollback_false_only_report(stack):
    before = stack.snapshot()
    dry = guard(stack, check=True, guard_auto_rollback=True, guard_failures_before_rollback=1)
    v2 = stack.release("v2")
    assert dry.rc == 0, output(dry)[-4000:]
    assert "(dry run, nothing was changed): would roll back to %s" % v2["id"] in output(dry)
    assert stack.snapshot() == before and guard_state(stack) is None and stack.history() == []

    report = guard(stack, guard_failures_before_rollback=1)
    text = output(report)
    assert report.rc != 0
    assert "Guard of stack opsguard: report_only." in text and "Would roll back to %s (v2)" % v2["id"] in text, text[-4000:]
    assert "guard_auto_rollback is false" in text
    assert stack.snapshot() == before and stack.history() == [] and not stack.lock_exists()
    assert guard_state(stack)["consecutive_failures"] == 1
