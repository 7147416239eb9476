"""The rollback as an AWX job launches it: the survey's answers as AWX sends them (strings for
the choice questions, the defaults of unanswered questions), the job template's extra vars and
AWX's own job variables. Asserts on the real stack and on what history and report record."""
import json
import os
import sys

import pytest

from ansible_run import ROOT, run_playbook

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rollback"))
from stack import Stack, record  # noqa: E402  pylint: disable=wrong-import-position

AWX_JOB = {"awx_job_id": 4242, "tower_job_id": 4242, "awx_user_name": "alice", "tower_user_name": "alice",
           "awx_job_launch_type": "manual"}


def survey_answers(stack, **answers):
    """What AWX sends for awx/surveys/rollback.json: each default, overridden by the answers."""
    with open(os.path.join(ROOT, "awx", "surveys", "rollback.json")) as handle:
        spec = json.load(handle)["spec"]
    sent = {q["variable"]: q["default"] for q in spec if q.get("default") not in (None, "")}
    sent.update(stack=stack.name, project_dir=stack.project_dir, **answers)
    assert set(sent) <= {q["variable"] for q in spec}
    return sent


@pytest.fixture(scope="module")
def stack():
    s = Stack("opsawxrb", 18880, "/tmp/ops-rollback-it-opsawxrb")
    s.create()
    s.deploy("v1")
    s.seed()  # the rows the release records' integrity check counts
    record(s, "v1")
    s.deploy("v2")
    record(s, "v2")
    yield s
    s.destroy()


def launch(stack, answers, job=None):
    # The job template's extra vars (awx/job_templates.yml) point at the test's directories.
    extra = dict({"state_dir": stack.state_dir, "backup_root": stack.backup_root}, **answers)
    extra.update(job or AWX_JOB)
    return run_playbook("ops.rollback.rollback", extra, json_output=False)


def test_a_wrong_confirmation_word_of_the_right_length_changes_nothing(stack):
    # AWX's min/max (8) let this through; the playbook refuses it before any change.
    before = stack.snapshot()
    run = launch(stack, survey_answers(stack, confirm="ROLLBACX", reason="it: awx typo"))
    assert run.rc != 0
    assert "value of confirm must be one of: , ROLLBACK, got: ROLLBACX" in " ".join((run.stdout + run.stderr).split())
    assert stack.snapshot() == before and stack.history() == [] and not stack.lock_exists()


def test_survey_rollback_records_the_awx_job_and_user(stack):
    answers = survey_answers(stack, confirm="ROLLBACK", reason="it: from the AWX survey",
                             backup_volumes="false")
    assert answers["target"] == "previous" and answers["strategy"] == "recreate"
    run = launch(stack, answers)
    assert run.rc == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert stack.version() == "v1"
    (entry,) = stack.history()
    assert entry["who"] == "awx job 4242 by alice"
    assert (entry["status"], entry["strategy"], entry["reason"]) == ("succeeded", "recreate", "it: from the AWX survey")
    assert entry["to"] == stack.release("v1")["id"]
    with open(os.path.join(stack.state_dir, stack.name, "reports", entry["id"] + ".md")) as handle:
        assert "| who | awx job 4242 by alice |" in handle.read()
