# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rollback history (history.jsonl) and the per-rollback Markdown/JSON reports."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.ops.rollback.plugins.module_utils._history import (
    HISTORY_FIELDS,
    history_entry,
    history_path,
    read_history,
    render_report,
    write_record,
)
from ansible_collections.ops.rollback.plugins.module_utils._names import NameError_


def record(rid="20261122T043000Z-1234", **extra):
    base = {"id": rid, "stack": "shop", "from": "c3", "to": "b2", "strategy": "recreate",
            "reason": "checkout errors", "who": "alice", "started_at": "2026-11-22T04:30:00Z",
            "ended_at": "2026-11-22T04:31:00Z", "duration_s": 60.0, "downtime_s": 4.5, "status": "succeeded",
            "backup_id": "bk1", "failed_step": None, "error": None, "recovered": None}
    base.update(extra)
    return base


def mode(path):
    return os.stat(path).st_mode & 0o777


# -- history_entry -------------------------------------------------------------------------
def test_history_entry_has_exactly_the_history_fields():
    entry = history_entry(dict(record(), verify=[{"name": "http"}], impact_text=["x"]))
    assert tuple(entry) == HISTORY_FIELDS
    assert "verify" not in entry and "impact_text" not in entry
    assert entry["from"] == "c3" and entry["downtime_s"] == 4.5


def test_history_entry_fills_missing_fields_with_none():
    entry = history_entry({"id": "r1", "stack": "shop"})
    assert set(entry) == set(HISTORY_FIELDS)
    assert entry["status"] is None


# -- read_history ----------------------------------------------------------------------------
def test_read_history_of_a_new_stack_is_empty(tmp_path):
    assert read_history(str(tmp_path), "shop") == []


def test_read_history_oldest_first_skipping_a_torn_last_line(tmp_path):
    path = history_path(str(tmp_path), "shop")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as handle:
        handle.write('{"id": "r1"}\n{"id": "r2"}\n{"id": "r3", "sta')
    assert [e["id"] for e in read_history(str(tmp_path), "shop")] == ["r1", "r2"]


def test_history_path_refuses_a_traversing_stack(tmp_path):
    with pytest.raises(NameError_):
        history_path(str(tmp_path), "../x")


# -- render_report ----------------------------------------------------------------------------
def test_render_report_title_table_and_impact():
    text = render_report(record(), ["line one", "line two"])
    lines = text.splitlines()
    assert lines[0] == "# Rollback 20261122T043000Z-1234 of stack shop"
    assert "| from | c3 |" in lines
    assert "| downtime s | 4.5 |" in lines
    assert "| failed step |  |" in lines
    assert lines[lines.index("## Impact") + 2:lines.index("## Impact") + 5] == ["```", "line one", "line two"]


def test_render_report_has_one_row_per_field_after_id_and_stack():
    lines = render_report(record(), []).splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| |")]
    assert len(rows) == len(HISTORY_FIELDS) - 2


def test_render_report_escapes_pipes():
    text = render_report(record(reason="a | b", error="x|y"), [])
    assert "| reason | a \\| b |" in text.splitlines()
    assert "| error | x\\|y |" in text.splitlines()


def test_render_report_keeps_a_multi_line_error_in_its_row():
    lines = render_report(record(status="failed", error="compose up failed:\nport 80 taken"), []).splitlines()
    row = [line for line in lines if line.startswith("| error |")]
    assert len(row) == 1 and row[0].endswith(" |") and "port 80 taken" in row[0]


def test_render_report_without_impact_says_not_computed():
    assert "(not computed)" in render_report(record(), None)


def test_render_report_lists_verification_checks():
    text = render_report(dict(record(), verify=[{"name": "http", "passed": True, "detail": "200"},
                                                {"name": "db", "passed": False}]), [])
    assert "- PASS http: 200" in text.splitlines()
    assert "- FAIL db: " in text.splitlines()


def test_render_report_without_checks_has_no_verification_section():
    assert "## Verification" not in render_report(record(), [])


# -- write_record -----------------------------------------------------------------------------
def test_write_record_writes_reports_and_history_line(tmp_path):
    paths = write_record(str(tmp_path), "shop", record(), ["impact"])
    reports = os.path.join(os.path.realpath(tmp_path), "shop", "reports")
    assert paths == {"markdown": os.path.join(reports, "20261122T043000Z-1234.md"),
                     "json": os.path.join(reports, "20261122T043000Z-1234.json")}
    with open(paths["markdown"]) as handle:
        assert handle.read() == render_report(record(), ["impact"])
    with open(paths["json"]) as handle:
        assert json.load(handle) == dict(record(), impact_text=["impact"])
    assert read_history(str(tmp_path), "shop") == [history_entry(record())]


def test_write_record_files_are_private(tmp_path):
    paths = write_record(str(tmp_path), "shop", record(), [])
    assert mode(paths["markdown"]) == 0o600
    assert mode(paths["json"]) == 0o600
    assert mode(history_path(str(tmp_path), "shop")) == 0o600
    assert mode(os.path.dirname(paths["markdown"])) == 0o700


def test_write_record_appends_to_history(tmp_path):
    write_record(str(tmp_path), "shop", record("r1"), [])
    write_record(str(tmp_path), "shop", record("r2", status="failed"), [])
    assert [(e["id"], e["status"]) for e in read_history(str(tmp_path), "shop")] == [
        ("r1", "succeeded"), ("r2", "failed")]


def test_write_record_json_report_has_empty_impact_when_none(tmp_path):
    paths = write_record(str(tmp_path), "shop", record(), None)
    with open(paths["json"]) as handle:
        assert json.load(handle)["impact_text"] == []


@pytest.mark.parametrize("rid", ["../evil", "a/b", ""])
def test_write_record_refuses_an_unsafe_rollback_id(tmp_path, rid):
    with pytest.raises(NameError_):
        write_record(str(tmp_path), "shop", record(rid), [])
    assert os.listdir(tmp_path) == []


def test_write_record_after_a_torn_history_line_is_still_read(tmp_path):
    path = history_path(str(tmp_path), "shop")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as handle:
        handle.write('{"id": "r1"}\n{"id": "r2", "sta')
    write_record(str(tmp_path), "shop", record("r3"), [])
    assert [e["id"] for e in read_history(str(tmp_path), "shop")] == ["r1", "r3"]
