# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""rollback_record and rollback_history as Ansible runs them, on a state directory in tmp_path:
what is written (masked, private), what check mode leaves alone, what the history lists."""

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ops.rollback.plugins.modules import rollback_history, rollback_record

SECRET = "unit-secret-value-42"


def run_module(module, args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def state(tmp_path):
    """A ledger with v1 (b2) and v2 (c3, current), each with its stored .env."""
    state_dir = str(tmp_path / "state")
    releases = []
    for rid, version in (("b2b2b2b2b2b2", "v1"), ("c3c3c3c3c3c3", "v2")):
        files = os.path.join(state_dir, "shop", "releases", rid, "files")
        os.makedirs(files)
        with open(os.path.join(files, ".env"), "w") as handle:
            handle.write("APP_VERSION=%s\nAPP_SECRET=%s-%s\n" % (version, SECRET, version))
        releases.append({"id": rid, "version": version, "status": "healthy", "files": ["compose.yml", ".env"],
                         "services": {"web": {"image": "app:" + version, "image_id": "sha256:" + rid}}, "backups": []})
    with open(os.path.join(state_dir, "shop", "ledger.json"), "w") as handle:
        json.dump({"stack": "shop", "current": "c3c3c3c3c3c3", "releases": releases}, handle)
    return state_dir


def record_args(state_dir, **extra):
    args = {"project_name": "shop", "state_dir": state_dir, "rollback_id": "20261122T043000Z-1", "status": "failed",
            "from_release": "c3c3c3c3c3c3", "to_release": "b2b2b2b2b2b2", "who": "alice", "reason": "why",
            "started_at": "2026-11-22T04:30:00Z", "backup_id": "bk1", "backup_path": "/backups/shop/bk1",
            "failed_step": "Verify", "error": "APP_SECRET=%s-v1 in the output" % SECRET, "recovered": True,
            "impact_text": ["Rollback of stack shop"],
            "verify_checks": [{"name": "http", "passed": False, "detail": "body %s-v2" % SECRET, "duration_s": 0.1}]}
    args.update(extra)
    return args


def test_record_check_mode_writes_nothing_and_says_where_the_reports_would_go(state, capsys):
    before = sorted(os.listdir(os.path.join(state, "shop")))
    out = run_module(rollback_record, record_args(state, _ansible_check_mode=True), capsys)
    assert out["changed"] is True
    assert out["report"]["markdown"].endswith("/shop/reports/20261122T043000Z-1.md")
    assert sorted(os.listdir(os.path.join(state, "shop"))) == before
    # (ansible-core 2.19 echoes the module's own arguments under "invocation"; what it returns is masked)
    assert SECRET not in json.dumps(out["entry"]) and out["entry"]["error"] == "APP_SECRET=******** in the output"


def test_record_writes_masked_private_reports_and_the_history_line(state, capsys):
    out = run_module(rollback_record, record_args(state), capsys)
    md, js = out["report"]["markdown"], out["report"]["json"]
    for path in (md, js, os.path.join(state, "shop", "history.jsonl")):
        assert os.stat(path).st_mode & 0o777 == 0o600
        with open(path) as handle:
            assert SECRET not in handle.read()
    assert os.stat(os.path.dirname(md)).st_mode & 0o777 == 0o700
    with open(js) as handle:
        report = json.load(handle)
    assert report["from"] == {"id": "c3c3c3c3c3c3", "version": "v2"} and report["to"] == {"id": "b2b2b2b2b2b2", "version": "v1"}
    assert report["impact"]["env_keys"]["changed"] == ["APP_SECRET", "APP_VERSION"]
    assert report["impact"]["changed_services"] == ["web"]
    assert report["backup"] == {"id": "bk1", "path": "/backups/shop/bk1"}
    assert report["failure"]["error"] == "APP_SECRET=******** in the output"
    assert out["entry"]["to_version"] == "v1" and out["entry"]["backup_path"] == "/backups/shop/bk1"
    with open(os.path.join(state, "shop", "ledger.json")) as handle:
        assert [r["status"] for r in json.load(handle)["releases"]] == ["failed", "healthy"]


def test_record_refuses_an_unsafe_rollback_id_before_any_change(state, capsys):
    out = run_module(rollback_record, record_args(state, rollback_id="../x"), capsys)
    assert out["failed"] and "rollback_id='../x' is not allowed" in out["msg"]
    assert not os.path.exists(os.path.join(state, "shop", "history.jsonl"))


def test_history_lists_the_recorded_rollback_as_a_table_row(state, capsys):
    run_module(rollback_record, record_args(state, status="succeeded", error=None, failed_step=None), capsys)
    out = run_module(rollback_history, {"state_dir": state, "project_name": "shop", "_ansible_check_mode": True}, capsys)
    assert out["changed"] is False and out["stacks"] == ["shop"]
    assert len(out["table"]) == 2
    row = out["table"][1].split("  ")
    cells = [c.strip() for c in row if c.strip()]
    assert cells[1:4] == ["shop", "alice", "c3c3c3c3c3c3 (v2) \u2192 b2b2b2b2b2b2 (v1)"]
    assert cells[4] == "recreate" and cells[-1] == "succeeded"
    assert out["entries"][0]["report"]["json"].endswith("20261122T043000Z-1.json")
    assert out["text"].splitlines()[:2] == out["table"]
    assert out["text"].splitlines()[-1] == "  " + out["entries"][0]["report"]["markdown"]


def test_history_of_nothing_says_so(state, capsys):
    out = run_module(rollback_history, {"state_dir": state, "project_name": "blog"}, capsys)
    assert out["entries"] == [] and out["text"] == "No rollback recorded for stack blog."


def test_history_of_all_stacks_when_none_is_given(state, capsys):
    run_module(rollback_record, record_args(state), capsys)
    out = run_module(rollback_history, {"state_dir": state}, capsys)
    assert out["stacks"] == ["shop"] and [e["status"] for e in out["entries"]] == ["failed"]
    assert out["table"][1].endswith("failed, recovered")


@pytest.mark.parametrize("args, message", [
    ({"limit": 0}, "limit=0: give 1 or more"),
    ({"project_name": "../etc"}, "Reading the rollback history of stack ../etc: stack='../etc' is not allowed"),
])
def test_history_refuses_bad_input(state, capsys, args, message):
    out = run_module(rollback_history, dict(args, state_dir=state), capsys)
    assert out["failed"] and message in out["msg"]
