# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rollback history (history.jsonl), the per-rollback Markdown/JSON reports and the history table."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.ops.rollback.plugins.module_utils._history import (
    ARROW,
    HISTORY_FIELDS,
    MASK,
    TABLE_HEADER,
    build_report,
    collect,
    format_duration,
    format_status,
    history_entry,
    history_text,
    history_path,
    mask,
    mask_record,
    netlify_entry,
    read_history,
    release_facts,
    render_report,
    render_table,
    report_paths,
    stacks_with_history,
    table_row,
    write_record,
)
from ansible_collections.ops.rollback.plugins.module_utils._names import NameError_

SECRET = "s3cr3t-token-value"
IMAGES = [
    {"service": "db", "change": "unchanged", "from": {"image": "pg:15", "image_id": "sha256:aa"},
     "to": {"image": "pg:15", "image_id": "sha256:aa"}},
    {"service": "web", "change": "changed", "from": {"image": "app:v2", "image_id": "sha256:" + "b" * 64},
     "to": {"image": "app:v1", "image_id": "sha256:" + "c" * 64}},
]
ENV = {"added": [], "removed": ["NEW_FLAG"], "changed": ["APP_SECRET", "APP_VERSION"]}


def record(rid="20261122T043000Z-1234", **extra):
    base = {"id": rid, "stack": "shop", "from": "c3c3c3c3c3c3", "to": "b2b2b2b2b2b2", "strategy": "recreate",
            "reason": "checkout errors", "who": "alice", "started_at": "2026-11-22T04:30:00Z",
            "ended_at": "2026-11-22T04:31:05Z", "duration_s": 65.0, "downtime_s": 4.5, "status": "succeeded",
            "backup_id": "bk1", "backup_path": "/var/backups/ops-rollback/shop/bk1", "failed_step": None,
            "error": None, "recovered": None, "from_version": "v2", "to_version": "v1"}
    base.update(extra)
    return base


def failed(**extra):
    base = {"status": "failed", "failed_step": "Verify | Check the stack on the target release",
            "error": "1 of 3 checks failed: [http] 503", "recovered": True}
    base.update(extra)
    return record(**base)


def mode(path):
    return os.stat(path).st_mode & 0o777


# -- history_entry -------------------------------------------------------------------------
def test_history_entry_has_exactly_the_history_fields():
    entry = history_entry(dict(record(), verify=[{"name": "http"}], impact_text=["x"]))
    assert tuple(entry) == HISTORY_FIELDS
    assert "verify" not in entry and "impact_text" not in entry
    assert entry["from"] == "c3c3c3c3c3c3" and entry["downtime_s"] == 4.5 and entry["to_version"] == "v1"


def test_history_entry_fills_missing_fields_with_none():
    entry = history_entry({"id": "r1", "stack": "shop"})
    assert set(entry) == set(HISTORY_FIELDS)
    assert entry["status"] is None and entry["backup_path"] is None


# -- read_history ----------------------------------------------------------------------------
def test_read_history_of_a_new_stack_is_empty(tmp_path):
    assert read_history(str(tmp_path), "shop") == []


def test_read_history_oldest_first_skipping_a_torn_last_line(tmp_path):
    path = history_path(str(tmp_path), "shop")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as handle:
        handle.write('{"id": "r1"}\n[1, 2]\n{"id": "r2"}\n{"id": "r3", "sta')
    assert [e["id"] for e in read_history(str(tmp_path), "shop")] == ["r1", "r2"]


def test_history_path_refuses_a_traversing_stack(tmp_path):
    with pytest.raises(NameError_):
        history_path(str(tmp_path), "../x")


def test_report_paths_are_beside_the_history(tmp_path):
    paths = report_paths(str(tmp_path), "shop", "r1")
    base = os.path.join(os.path.realpath(tmp_path), "shop", "reports")
    assert paths == {"markdown": os.path.join(base, "r1.md"), "json": os.path.join(base, "r1.json")}


# -- masking ---------------------------------------------------------------------------------
def test_mask_replaces_secrets_in_nested_strings_and_their_json_form():
    value = {"a": ["x %s y" % SECRET, 3, None], "b": 'quoted "q\\uote"'}
    assert mask(value, [SECRET, 'q\\uote"']) == {"a": ["x %s y" % MASK, 3, None], "b": 'quoted "' + MASK}


def test_mask_record_masks_free_text_and_check_details_but_not_ids_times_or_images():
    secret = "2026"  # a short secret that also appears in the timestamps
    masked = mask_record(record(reason="token 2026", error="2026 leaked",
                                verify=[{"name": "http", "passed": True, "detail": "body 2026"}]), [secret])
    assert masked["reason"] == "token " + MASK and masked["error"] == MASK + " leaked"
    assert masked["verify"][0]["detail"] == "body " + MASK
    assert masked["started_at"] == "2026-11-22T04:30:00Z" and masked["id"] == "20261122T043000Z-1234"


# -- build_report ------------------------------------------------------------------------------
def test_build_report_of_a_success():
    checks = [{"name": "http", "passed": True, "detail": "200"}, {"name": "items", "passed": True, "detail": "1000"}]
    report = build_report(dict(record(), verify=checks), {"images": IMAGES, "env": ENV}, ["line one"])
    assert report["format"] == 1 and report["status"] == "succeeded" and report["who"] == "alice"
    assert report["from"] == {"id": "c3c3c3c3c3c3", "version": "v2"} and report["to"] == {"id": "b2b2b2b2b2b2", "version": "v1"}
    assert report["impact"]["changed_services"] == ["web"]
    assert report["impact"]["env_keys"] == ENV and report["impact"]["text"] == ["line one"]
    assert report["backup"] == {"id": "bk1", "path": "/var/backups/ops-rollback/shop/bk1"}
    assert report["verification"]["outcome"] == "passed (2 checks)"
    assert report["failure"] is None


def test_build_report_of_a_failure_says_what_happened_and_where_the_backup_is():
    checks = [{"name": "http", "passed": False, "detail": "503"}, {"name": "items", "passed": True}]
    report = build_report(dict(failed(), verify=checks))
    assert report["verification"]["outcome"] == "of the release put back: failed (1 of 2 checks: http)"
    failure = report["failure"]
    assert failure["step"] == "Verify | Check the stack on the target release" and failure["recovered"] is True
    assert failure["summary"].startswith(
        "The rollback failed at step 'Verify | Check the stack on the target release': 1 of 3 checks failed: [http] 503. ")
    assert "put release c3c3c3c3c3c3 (v2) back and it was verified healthy" in failure["summary"]
    assert "/var/backups/ops-rollback/shop/bk1" in failure["summary"]


def test_build_report_of_an_unrecovered_failure_before_the_backup():
    report = build_report(record(status="failed", failed_step="Backup | x", error="disk full", recovered=False,
                                 backup_id=None, backup_path=None))
    assert "DID NOT bring release c3c3c3c3c3c3 (v2) back healthy" in report["failure"]["summary"]
    assert "No backup was taken" in report["failure"]["summary"]
    assert report["verification"]["outcome"] == "not run"


def test_build_report_without_impact_has_empty_impact():
    report = build_report(record())
    assert report["impact"] == {"changed_services": [], "images": [], "text": [],
                                "env_keys": {"added": [], "removed": [], "changed": []}}


def test_build_report_masks_every_free_text():
    checks = [{"name": "http", "passed": False, "detail": "got " + SECRET}]
    report = build_report(dict(failed(reason="why " + SECRET, error="compose said " + SECRET), verify=checks),
                          {"images": IMAGES, "env": ENV}, ["APP_SECRET=" + SECRET], [SECRET])
    assert SECRET not in json.dumps(report)
    assert report["reason"] == "why " + MASK and report["impact"]["text"] == ["APP_SECRET=" + MASK]


# -- render_report -------------------------------------------------------------------------------
def rows_of(markdown):
    return dict(line.strip("|").split(" | ", 1) for line in markdown.splitlines()
                if line.startswith("| ") and not line.startswith("| |"))


def test_render_report_table_of_a_success():
    text = render_report(build_report(record(), {"images": IMAGES, "env": ENV}, ["impact line"]))
    lines = text.splitlines()
    assert lines[0] == "# Rollback of stack shop: succeeded"
    rows = {k.strip(): v.strip() for k, v in rows_of(text).items()}
    assert rows["who"] == "alice" and rows["reason"] == "checkout errors" and rows["status"] == "succeeded"
    assert rows["when"] == "2026-11-22T04:30:00Z %s 2026-11-22T04:31:05Z (1m05s)" % ARROW
    assert rows["from %s to" % ARROW] == "c3c3c3c3c3c3 (v2) %s b2b2b2b2b2b2 (v1)" % ARROW
    assert rows["strategy"] == "recreate" and rows["downtime"] == "4s"
    assert rows["backup"] == "bk1 at /var/backups/ops-rollback/shop/bk1"
    assert rows["verification"] == "not run" and rows["rollback id"] == "20261122T043000Z-1234"
    assert "## What happened" not in lines


def test_render_report_impact_lines():
    lines = render_report(build_report(record(), {"images": IMAGES, "env": ENV}, ["impact line"])).splitlines()
    assert "- web: app:v2 [bbbbbbbbbbbb] %s app:v1 [cccccccccccc]" % ARROW in lines
    assert "- db: pg:15 (unchanged)" in lines
    assert "- .env keys (values never shown): added -; removed NEW_FLAG; changed APP_SECRET, APP_VERSION" in lines
    start = lines.index("```")
    assert lines[start:start + 3] == ["```", "impact line", "```"]


def test_render_report_added_and_removed_services():
    images = [{"service": "cache", "change": "added", "from": None, "to": {"image": "redis:7", "image_id": "sha256:dd"}},
              {"service": "old", "change": "removed", "from": {"image": "x:1", "image_id": "sha256:ee"}, "to": None}]
    lines = render_report(build_report(record(), {"images": images})).splitlines()
    assert "- cache: added, redis:7 [dd]" in lines and "- old: removed (was x:1)" in lines


def test_render_report_without_impact():
    lines = render_report(build_report(record(), None, None)).splitlines()
    assert "- images: not computed" in lines and "- .env keys: no change" in lines and "```" not in lines


def test_render_report_of_a_failure_has_what_happened_with_the_error_verbatim():
    lines = render_report(build_report(failed(error="compose up failed:\nport 80 taken ```"))).splitlines()
    assert lines[0] == "# Rollback of stack shop: failed"
    start = lines.index("## What happened")
    assert lines[start + 2:start + 9] == [
        "The rollback failed at step 'Verify | Check the stack on the target release'.", "",
        "```", "compose up failed:", "port 80 taken ` ` `", "```", ""]
    assert lines[start + 9] == ("The emergency recovery put release c3c3c3c3c3c3 (v2) back and it was verified healthy. "
                                "The backup taken before the rollback is /var/backups/ops-rollback/shop/bk1.")


def test_render_report_of_an_unrecovered_failure():
    lines = render_report(build_report(failed(recovered=False, error=None, backup_id=None, backup_path=None))).splitlines()
    start = lines.index("## What happened")
    assert lines[start + 5] == "no message"
    assert lines[start + 8].startswith("The emergency recovery DID NOT bring release c3c3c3c3c3c3 (v2) back healthy")
    assert lines[start + 8].endswith("No backup was taken (the failure came before the backup finished).")


def test_render_report_escapes_pipes_and_keeps_multi_line_text_in_its_row():
    text = render_report(build_report(record(reason="a | b\nsecond line")))
    assert "| reason | a \\| b second line |" in text.splitlines()


def test_render_report_lists_verification_checks():
    checks = [{"name": "http", "passed": True, "detail": "200"}, {"name": "db", "passed": False}]
    lines = render_report(build_report(dict(record(), verify=checks))).splitlines()
    assert "- PASS http: 200" in lines and "- FAIL db: " in lines


def test_render_report_without_checks_has_no_verification_section():
    assert "## Verification" not in render_report(build_report(record()))


def test_render_report_without_reason_or_backup():
    rows = {k.strip(): v.strip() for k, v in rows_of(render_report(build_report(
        record(reason="", backup_id=None, backup_path=None)))).items()}
    assert rows["reason"] == "(none given)" and rows["backup"] == "none"


# -- write_record -----------------------------------------------------------------------------
def test_write_record_writes_reports_and_history_line(tmp_path):
    report = build_report(record(), {"images": IMAGES, "env": ENV}, ["impact"])
    paths = write_record(str(tmp_path), "shop", record(), report)
    assert paths == report_paths(str(tmp_path), "shop", "20261122T043000Z-1234")
    with open(paths["markdown"]) as handle:
        assert handle.read() == render_report(report)
    with open(paths["json"]) as handle:
        assert json.load(handle) == report
    assert read_history(str(tmp_path), "shop") == [history_entry(record())]


def test_write_record_files_are_private(tmp_path):
    paths = write_record(str(tmp_path), "shop", record(), build_report(record()))
    assert mode(paths["markdown"]) == 0o600
    assert mode(paths["json"]) == 0o600
    assert mode(history_path(str(tmp_path), "shop")) == 0o600
    assert mode(os.path.dirname(paths["markdown"])) == 0o700
    assert mode(os.path.join(str(tmp_path), "shop")) == 0o700


def test_write_record_appends_to_history(tmp_path):
    write_record(str(tmp_path), "shop", record("r1"), build_report(record("r1")))
    write_record(str(tmp_path), "shop", record("r2", status="failed"), build_report(record("r2", status="failed")))
    assert [(e["id"], e["status"]) for e in read_history(str(tmp_path), "shop")] == [
        ("r1", "succeeded"), ("r2", "failed")]


@pytest.mark.parametrize("rid", ["../evil", "a/b", ""])
def test_write_record_refuses_an_unsafe_rollback_id(tmp_path, rid):
    with pytest.raises(NameError_):
        write_record(str(tmp_path), "shop", record(rid), build_report(record(rid)))
    assert os.listdir(tmp_path) == []


def test_write_record_after_a_torn_history_line_is_still_read(tmp_path):
    path = history_path(str(tmp_path), "shop")
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as handle:
        handle.write('{"id": "r1"}\n{"id": "r2", "sta')
    write_record(str(tmp_path), "shop", record("r3"), build_report(record("r3")))
    assert [e["id"] for e in read_history(str(tmp_path), "shop")] == ["r1", "r3"]


# -- release_facts -----------------------------------------------------------------------------
def stored_release(state_dir, rid, version, image_id, env, environment):
    base = os.path.join(state_dir, "shop", "releases", rid)
    os.makedirs(os.path.join(base, "files"))
    with open(os.path.join(base, "files", ".env"), "w") as handle:
        handle.write(env)
    with open(os.path.join(base, "resolved.json"), "w") as handle:
        json.dump({"services": {"web": {"environment": environment}}}, handle)
    return {"id": rid, "version": version, "files": ["compose.yml", ".env"],
            "services": {"web": {"image": "app:" + version, "image_id": image_id}}}


def test_release_facts_reads_versions_images_env_keys_and_secrets(tmp_path):
    state = str(tmp_path)
    ledger = {"stack": "shop", "current": "c3", "releases": [
        stored_release(state, "b2", "v1", "sha256:11", "APP_SECRET=old-secret-1\nKEEP=same\n", {"INLINE": "inline-secret"}),
        stored_release(state, "c3", "v2", "sha256:22", "APP_SECRET=new-secret-2\nKEEP=same\nADDED=x1x\n", ["LIST=list-secret", "BARE"]),
    ]}
    facts = release_facts(state, "shop", ledger, "c3", "b2")
    assert facts["from_version"] == "v2" and facts["to_version"] == "v1"
    assert facts["impact"]["changed_services"] == ["web"]
    assert facts["impact"]["images"][0]["from"]["image"] == "app:v2"
    assert facts["impact"]["env"] == {"added": [], "removed": ["ADDED"], "changed": ["APP_SECRET"]}
    assert {"old-secret-1", "new-secret-2", "same", "x1x", "inline-secret", "list-secret"} <= set(facts["secrets"])


def test_release_facts_of_releases_missing_from_the_ledger(tmp_path):
    facts = release_facts(str(tmp_path), "shop", {"stack": "shop", "releases": []}, "c3", "b2")
    assert facts["from_version"] is None and facts["impact"]["images"] == [] and facts["secrets"] == []


# -- reading for the table: collect --------------------------------------------------------------
def history_of(state_dir, stack, *records, reports=True):
    for rec in records:
        rec = dict(rec, stack=stack)
        if reports:
            write_record(state_dir, stack, rec, build_report(rec))
        else:
            os.makedirs(os.path.join(state_dir, stack), exist_ok=True)
            with open(history_path(state_dir, stack), "a") as handle:
                handle.write(json.dumps(history_entry(rec)) + "\n")


def test_collect_one_stack_newest_first_with_report_paths(tmp_path):
    state = str(tmp_path)
    history_of(state, "shop", record("r1", started_at="2026-11-20T10:00:00Z"), record("r2", started_at="2026-11-22T10:00:00Z"))
    history_of(state, "blog", record("r3", started_at="2026-11-21T10:00:00Z"))
    stacks, entries = collect(state, "shop")
    assert stacks == ["shop"]
    assert [e["id"] for e in entries] == ["r2", "r1"]
    assert entries[0]["report"] == report_paths(state, "shop", "r2") and entries[0]["source"] == "stack"


def test_collect_all_stacks_merged_by_time_and_limited(tmp_path):
    state = str(tmp_path)
    history_of(state, "shop", record("r1", started_at="2026-11-20T10:00:00Z"), record("r2", started_at="2026-11-22T10:00:00Z"))
    history_of(state, "blog", record("r3", started_at="2026-11-21T10:00:00Z"))
    os.makedirs(os.path.join(state, "empty"))  # a stack without history is not listed
    stacks, entries = collect(state, None, limit=2)
    assert stacks == ["blog", "shop"]
    assert [(e["id"], e["stack"]) for e in entries] == [("r2", "shop"), ("r3", "blog")]


def test_collect_keeps_file_order_within_the_same_second(tmp_path):
    state = str(tmp_path)
    history_of(state, "shop", record("r1"), record("r2"), record("r3"))
    assert [e["id"] for e in collect(state, "shop")[1]] == ["r3", "r2", "r1"]


def test_collect_marks_a_missing_report_and_survives_an_unsafe_id(tmp_path):
    state = str(tmp_path)
    history_of(state, "shop", record("r1"), record("../x", started_at="2026-11-23T00:00:00Z"), reports=False)
    entries = collect(state, "shop")[1]
    assert [e["id"] for e in entries] == ["../x", "r1"]
    assert all(e["report"] is None for e in entries)


def test_collect_of_a_missing_state_dir_is_empty(tmp_path):
    assert collect(str(tmp_path / "nowhere")) == ([], [])
    assert stacks_with_history(str(tmp_path / "nowhere")) == []
    assert collect(str(tmp_path / "nowhere"), "shop") == (["shop"], [])


def test_collect_refuses_an_unsafe_stack(tmp_path):
    with pytest.raises(NameError_):
        collect(str(tmp_path), "../etc")


def test_collect_reads_a_netlify_history_file(tmp_path):
    state = str(tmp_path / "state")
    history_of(state, "shop", record("r1", started_at="2026-11-20T10:00:00Z"))
    netlify = tmp_path / "netlify-history.jsonl"
    netlify.write_text(json.dumps({
        "time": "2026-11-21T10:00:00Z", "user": "bob", "reason": "bad deploy", "site_id": "s1", "site_name": "example",
        "from": {"id": "dep2", "commit_ref": "abcdef1234"}, "to": {"id": "dep1", "commit_ref": None},
        "outcome": "failed, recovered", "error": "HTTP 500"}) + "\n")
    entries = collect(state, None, netlify_history_file=str(netlify))[1]
    assert [e["stack"] for e in entries] == ["netlify:example", "shop"]
    site = entries[0]
    assert (site["from"], site["from_version"], site["to"], site["to_version"]) == ("dep2", "abcdef1", "dep1", None)
    assert (site["who"], site["strategy"], site["status"], site["recovered"]) == ("bob", "netlify", "failed", True)
    assert site["source"] == "netlify" and site["report"] is None     # an older line names no report


def test_collect_finds_the_report_a_netlify_line_names(tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "20261121T100000Z-example.md").write_text("# report\n")
    netlify = tmp_path / "netlify-history.jsonl"
    netlify.write_text(json.dumps({"time": "2026-11-21T10:00:00Z", "site_id": "s1", "site_name": "example", "from": {"id": "d2"},
                                   "to": {"id": "d1"}, "outcome": "published",
                                   "report": str(reports / "20261121T100000Z-example.md")}) + "\n")
    (entry,) = collect(str(tmp_path / "state"), None, netlify_history_file=str(netlify))[1]
    assert entry["report"] == {"markdown": str(reports / "20261121T100000Z-example.md"),
                               "json": str(reports / "20261121T100000Z-example.json")}


@pytest.mark.parametrize("outcome, status, recovered", [
    ("published", "succeeded", None), ("failed, recovery failed", "failed", False),
    ("failed, no recovery point", "failed", False), ("odd", "odd", None), (None, "unknown", None)])
def test_netlify_entry_outcomes(outcome, status, recovered):
    entry = netlify_entry({"outcome": outcome, "site_id": "s1"})
    assert (entry["status"], entry["recovered"], entry["stack"]) == (status, recovered, "netlify:s1")


# -- the table -------------------------------------------------------------------------------------
@pytest.mark.parametrize("seconds, text", [
    (None, "-"), ("12", "-"), (True, "-"), (0, "0s"), (4.4, "4s"), (59.6, "1m00s"), (65, "1m05s"),
    (3599, "59m59s"), (3600, "1h00m"), (7384, "2h03m")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("entry, text", [
    ({"status": "succeeded"}, "succeeded"), ({"status": "failed", "recovered": True}, "failed, recovered"),
    ({"status": "failed", "recovered": False}, "failed, NOT recovered"), ({"status": "failed"}, "failed"),
    ({"status": "noop"}, "noop"), ({}, "unknown")])
def test_format_status(entry, text):
    assert format_status(entry) == text


def test_table_row_of_an_entry():
    assert table_row(record()) == ("2026-11-22 04:30:00", "shop", "alice",
                                   "c3c3c3c3c3c3 (v2) %s b2b2b2b2b2b2 (v1)" % ARROW, "recreate", "1m05s", "succeeded")


def test_table_row_of_an_old_entry_without_versions_or_who():
    row = table_row({"from": "c3", "to": "b2", "status": "failed", "recovered": False})
    assert row == ("-", "-", "unknown", "c3 %s b2" % ARROW, "-", "-", "failed, NOT recovered")


def test_render_table_aligns_columns_under_the_header():
    lines = render_table([record(who="alice"), failed(who="awx job 42 by bob", stack="a-long-stack-name", duration_s=7)])
    assert len(lines) == 3
    header = lines[0]
    assert header.split()[:3] == ["when", "(UTC)", "stack"]
    for column in TABLE_HEADER[1:]:
        start = header.index(column)
        for line in lines[1:]:
            assert line[start - 2:start] == "  " and line[start] != " "
    assert lines[2].endswith("failed, recovered") and "awx job 42 by bob" in lines[2]


def test_history_text_is_the_table_and_the_report_paths(tmp_path):
    entries = [dict(record("r2"), report={"markdown": "/s/shop/reports/r2.md", "json": "x"}, source="stack"),
               dict(record("r1"), report=None, source="stack"), dict(record("n1"), report=None, source="netlify")]
    lines = history_text(entries, "stack shop").splitlines()
    assert lines[:4] == render_table(entries)
    assert lines[4:] == ["", "Reports (newest first):", "  /s/shop/reports/r2.md", "  (none: missing)",
                         "  (none: missing)"]


def test_history_text_of_nothing_says_so():
    assert history_text([], "stack shop") == "No rollback recorded for stack shop."


def test_render_table_of_nothing_is_the_header():
    assert render_table([]) == ["  ".join(TABLE_HEADER)]


def test_render_table_keeps_each_row_on_one_line():
    lines = render_table([record(who="two\nlines")])
    assert len(lines) == 2 and "two lines" in lines[1]
