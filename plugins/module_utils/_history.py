# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rollback history of a stack: one JSON line per rollback, and a report beside it.

``<state_dir>/<stack>/history.jsonl`` and ``<state_dir>/<stack>/reports/<rollback_id>.{md,json}``.
"""

from __future__ import annotations

import json
import os

from ansible_collections.ops.rollback.plugins.module_utils._names import check_name, child_path
from ansible_collections.ops.rollback.plugins.module_utils._state_files import append_line, write_bytes_atomic, write_json_atomic

HISTORY_FIELDS = ("id", "stack", "from", "to", "strategy", "reason", "who", "started_at", "ended_at",
                  "duration_s", "downtime_s", "status", "backup_id", "failed_step", "error", "recovered")


def history_path(state_dir, stack):
    return child_path(state_dir, check_name(stack, "stack"), "history.jsonl")


def read_history(state_dir, stack):
    """Every history entry of the stack, oldest first; a torn last line is skipped."""
    entries = []
    try:
        with open(history_path(state_dir, stack), "r", encoding="utf-8") as handle:
            for line in handle:
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
    except FileNotFoundError:
        pass
    return entries


def history_entry(record):
    return {key: record.get(key) for key in HISTORY_FIELDS}


def render_report(record, impact_text):
    """The Markdown report of one rollback."""
    lines = [
        "# Rollback %s of stack %s" % (record["id"], record["stack"]),
        "",
        "| | |",
        "|---|---|",
    ]
    for key in HISTORY_FIELDS[2:]:
        value = record.get(key)
        cell = "" if value is None else " ".join(str(value).replace("|", "\\|").splitlines())
        lines.append("| %s | %s |" % (key.replace("_", " "), cell))
    lines += ["", "## Impact", "", "```"] + list(impact_text or ["(not computed)"]) + ["```", ""]
    if record.get("verify"):
        lines += ["## Verification", ""]
        for check in record["verify"]:
            lines.append("- %s %s: %s" % ("PASS" if check.get("passed") else "FAIL", check.get("name"), check.get("detail", "")))
        lines.append("")
    return "\n".join(lines)


def write_record(state_dir, stack, record, impact_text):
    """Append the history line and write the report; returns the report paths."""
    rollback_id = check_name(record["id"], "rollback id")
    reports = child_path(state_dir, check_name(stack, "stack"), "reports")
    md_path = os.path.join(reports, rollback_id + ".md")
    json_path = os.path.join(reports, rollback_id + ".json")
    write_bytes_atomic(md_path, render_report(record, impact_text).encode("utf-8"))
    write_json_atomic(json_path, dict(record, impact_text=list(impact_text or [])))
    append_line(history_path(state_dir, stack), json.dumps(history_entry(record), sort_keys=True))
    return {"markdown": md_path, "json": json_path}
