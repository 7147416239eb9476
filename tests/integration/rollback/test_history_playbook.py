"""ops.rollback.history after a real recreate rollback: the table row says who, from -> to,
strategy and status; the reports beside the history are private and hold no .env value."""
import json
import os
import stat

import pytest

from ansible_run import run_playbook
from stack import SECRET_PREFIX, Stack, record

NAME = "opshist"
PORT = 18770
OPERATOR = "it-history-operator"
ARROW = "\u2192"


@pytest.fixture(scope="module")
def rolled_back():
    """v1 and v2 recorded, then one confirmed rollback v2 -> v1 started by OPERATOR."""
    s = Stack(NAME, PORT, "/tmp/ops-rollback-it-" + NAME)
    s.create()
    try:
        s.deploy("v1")
        s.seed()
        record(s, "v1")
        s.deploy("v2")
        record(s, "v2")
        run = run_playbook("ops.rollback.rollback", s.vars(confirm="ROLLBACK", reason="it: history", backup_volumes=False),
                           env={"USER": OPERATOR, "SUDO_USER": ""}, json_output=False)
        assert run.rc == 0, (run.stdout + run.stderr)[-6000:]
        assert s.version() == "v1"
        yield s
    finally:
        s.destroy()


def history(it_stack, check=False, **extra):
    args = {"state_dir": it_stack.state_dir}
    args.update(extra)
    run = run_playbook("ops.rollback.history", args, check=check)
    assert run.rc == 0, (run.stdout + run.stderr)[-6000:]
    return run


def cells(line):
    return [cell.strip() for cell in line.split("  ") if cell.strip()]


def test_history_prints_the_rollback_as_a_table_row(rolled_back):
    stack = rolled_back
    v1, v2 = stack.release("v1"), stack.release("v2")
    run = history(stack, stack=NAME)
    result = run.task_results("History | Read the last rollbacks")[0]
    assert result["changed"] is False
    printed = run.task_results("History | Print them")[0]["msg"].splitlines()
    assert printed[:2] == result["table"] and len(result["table"]) == 2
    assert printed[-1] == "  " + os.path.join(stack.state_dir, NAME, "reports", stack.history()[0]["id"] + ".md")
    header, row = cells(result["table"][0]), cells(result["table"][1])
    assert header == ["when (UTC)", "stack", "who", "from %s to" % ARROW, "strategy", "duration", "status"]
    assert row[1:5] == [NAME, OPERATOR, "%s (v2) %s %s (v1)" % (v2["id"], ARROW, v1["id"]), "recreate"]
    assert row[6] == "succeeded"
    assert row[0] == stack.history()[0]["started_at"].replace("T", " ").rstrip("Z")
    entry = result["entries"][0]
    assert entry["reason"] == "it: history" and entry["who"] == OPERATOR


def test_history_in_check_mode_and_for_all_stacks_prints_the_same_row(rolled_back):
    stack = rolled_back
    first = history(stack, stack=NAME).task_results("History | Read the last rollbacks")[0]["table"]
    checked = history(stack, check=True).task_results("History | Read the last rollbacks")[0]
    assert checked["table"] == first and checked["stacks"] == [NAME]


def test_history_refuses_bad_input_naming_the_variable(rolled_back):
    run = run_playbook("ops.rollback.history", {"state_dir": rolled_back.state_dir, "limit": "many"}, json_output=False)
    assert run.rc != 0 and "limit" in run.stdout + run.stderr


def test_reports_are_private_complete_and_hold_no_env_value(rolled_back):
    stack = rolled_back
    entry = stack.history()[0]
    reports = os.path.join(stack.state_dir, NAME, "reports")
    assert stat.S_IMODE(os.stat(reports).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(stack.state_dir, NAME)).st_mode) == 0o700
    texts = {}
    for ext in ("md", "json"):
        path = os.path.join(reports, "%s.%s" % (entry["id"], ext))
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(path) as handle:
            texts[ext] = handle.read()
        assert SECRET_PREFIX not in texts[ext]
    with open(os.path.join(stack.state_dir, NAME, "history.jsonl")) as handle:
        assert SECRET_PREFIX not in handle.read()
    report = json.loads(texts["json"])
    assert report["who"] == OPERATOR and report["reason"] == "it: history" and report["status"] == "succeeded"
    assert report["from"]["version"] == "v2" and report["to"]["version"] == "v1"
    assert report["impact"]["changed_services"] == ["web"]
    assert "APP_SECRET" in report["impact"]["env_keys"]["changed"]
    assert report["backup"]["path"].startswith(os.path.join(stack.backup_root, NAME) + "/")
    assert os.path.isdir(report["backup"]["path"])
    assert report["verification"]["outcome"].startswith("passed")
    assert "| who | %s |" % OPERATOR in texts["md"] and "web: ops-rollback-test/app:v2" in texts["md"]
