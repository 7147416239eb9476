# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rollback history of a stack: one JSON line per rollback, and a report beside it.

``<state_dir>/<stack>/history.jsonl`` and ``<state_dir>/<stack>/reports/<rollback_id>.{md,json}``.

Writing (rollback_record): build_report() turns a finished rollback into the report (a dict,
every string masked), render_report() makes its Markdown, write_record() writes both and
appends the history line. Reading (rollback_history): collect() gathers the newest entries of
one stack or of every stack (and of a Netlify history file), render_table() prints them.
Everything here is pure apart from the file reads and writes named so.
"""

from __future__ import annotations

import json
import os

from ansible_collections.ops.rollback.plugins.module_utils._impact import env_changes, image_changes, parse_dotenv, secret_values
from ansible_collections.ops.rollback.plugins.module_utils._names import NameError_, check_name, child_path
from ansible_collections.ops.rollback.plugins.module_utils._releases import ENV_FILE, find_release, release_dir
from ansible_collections.ops.rollback.plugins.module_utils._state_files import (
    append_line,
    read_json,
    write_bytes_atomic,
    write_json_atomic,
)

# One line of history.jsonl, in this order. Fields after "recovered" came later: older lines
# lack them (read them as null).
HISTORY_FIELDS = ("id", "stack", "from", "to", "strategy", "reason", "who", "started_at", "ended_at",
                  "duration_s", "downtime_s", "status", "backup_id", "failed_step", "error", "recovered",
                  "from_version", "to_version", "backup_path")
REPORT_FORMAT = 1
MASK = "********"
ARROW = "\u2192"
TABLE_HEADER = ("when (UTC)", "stack", "who", "from %s to" % ARROW, "strategy", "duration", "status")
NETLIFY_OUTCOMES = {
    "published": ("succeeded", None),
    "failed, recovered": ("failed", True),
    "failed, recovery failed": ("failed", False),
    "failed, no recovery point": ("failed", False),
}


# -- paths ---------------------------------------------------------------------------------
def history_path(state_dir, stack):
    return child_path(state_dir, check_name(stack, "stack"), "history.jsonl")


def report_paths(state_dir, stack, rollback_id):
    """Where the Markdown and JSON reports of one rollback are (or go)."""
    reports = child_path(state_dir, check_name(stack, "stack"), "reports")
    rollback_id = check_name(rollback_id, "rollback id")
    return {"markdown": os.path.join(reports, rollback_id + ".md"), "json": os.path.join(reports, rollback_id + ".json")}


# -- masking ---------------------------------------------------------------------------------
# The free-text fields of a record, where a secret could be quoted (an error quoting a command
# line, a check quoting a response). IDs, times, image references and key names are not masked:
# a short .env value such as a port would otherwise blank out timestamps and image tags.
FREE_TEXT_FIELDS = ("reason", "error", "failed_step")


def mask(value, secrets):
    """value with every secret replaced by the mask, in every string of lists and dicts."""
    if isinstance(value, str):
        for secret in secrets:
            for form in (secret, json.dumps(secret)[1:-1]):
                if form:
                    value = value.replace(form, MASK)
        return value
    if isinstance(value, dict):
        return {key: mask(item, secrets) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask(item, secrets) for item in value]
    return value


def mask_record(record, secrets):
    """record with its free-text fields and its checks' details masked."""
    masked = dict(record)
    for key in FREE_TEXT_FIELDS:
        masked[key] = mask(record.get(key), secrets)
    if record.get("verify"):
        masked["verify"] = [dict(check, detail=mask(check.get("detail"), secrets)) for check in record["verify"]]
    return masked


# -- what the two releases differ in (reads the stored releases) ---------------------------------
def _stored_env(state_dir, stack, release):
    if not release or ENV_FILE not in (release.get("files") or []):
        return {}
    try:
        with open(os.path.join(release_dir(state_dir, stack, release["id"]), "files", ENV_FILE), "rb") as handle:
            return parse_dotenv(handle.read())
    except (FileNotFoundError, NameError_):
        return {}


def _resolved_env_values(state_dir, stack, release):
    """The environment values of the release's resolved config (they hold secrets too)."""
    if not release:
        return {}
    try:
        resolved = read_json(os.path.join(release_dir(state_dir, stack, release["id"]), "resolved.json"), default={})
    except (NameError_, ValueError):
        return {}
    values = {}
    for name, service in ((resolved or {}).get("services") or {}).items():
        env = service.get("environment") if isinstance(service, dict) else None
        if isinstance(env, dict):
            values.update(("%s.%s" % (name, k), str(v)) for k, v in env.items() if v is not None)
        elif isinstance(env, list):
            values.update(("%s.%s" % (name, i), str(item).split("=", 1)[1]) for i, item in enumerate(env) if "=" in str(item))
    return values


def release_facts(state_dir, stack, ledger, from_id, to_id):
    """Version labels, image changes and .env key changes between the two releases of a
    rollback, and the secrets (every .env and environment value of both) to mask. A release
    missing from the ledger gives what can be known without it."""
    origin, target = find_release(ledger, from_id), find_release(ledger, to_id)
    from_env, to_env = _stored_env(state_dir, stack, origin), _stored_env(state_dir, stack, target)
    secrets = secret_values(from_env, to_env, _resolved_env_values(state_dir, stack, origin),
                            _resolved_env_values(state_dir, stack, target))
    images = image_changes((origin or {}).get("services") or {}, (target or {}).get("services") or {}) \
        if origin and target else []
    return {
        "from_version": (origin or {}).get("version"),
        "to_version": (target or {}).get("version"),
        "impact": {"images": images, "env": env_changes(from_env, to_env),
                   "changed_services": [i["service"] for i in images if i["change"] != "unchanged"]},
        "secrets": secrets,
    }


# -- writing ---------------------------------------------------------------------------------
def history_entry(record):
    return {key: record.get(key) for key in HISTORY_FIELDS}


def release_label(release_id, version):
    if not release_id:
        return "-"
    return "%s (%s)" % (release_id, version) if version else str(release_id)


def verification_outcome(checks, status):
    """The final verification in a few words; after a failure the checks are those of the
    release the recovery put back."""
    if not checks:
        return "not run" if status != "noop" else "not needed"
    failed = [c.get("name") for c in checks if not c.get("passed")]
    if failed:
        outcome = "failed (%d of %d checks: %s)" % (len(failed), len(checks), ", ".join(str(n) for n in failed))
    else:
        outcome = "passed (%d checks)" % len(checks)
    return "of the release put back: " + outcome if status == "failed" else outcome


def failure_sentences(record):
    """What happened after a failure: the failed step, the recovery, the backup (the error
    itself is kept apart, it may span many lines)."""
    origin = release_label(record.get("from"), record.get("from_version"))
    text = ["The rollback failed at step '%s'." % (record.get("failed_step") or "unknown step")]
    if record.get("recovered"):
        text.append("The emergency recovery put release %s back and it was verified healthy." % origin)
    else:
        text.append("The emergency recovery DID NOT bring release %s back healthy: the stack needs a human." % origin)
    if record.get("backup_path") or record.get("backup_id"):
        text.append("The backup taken before the rollback is %s." % (record.get("backup_path") or record.get("backup_id")))
    else:
        text.append("No backup was taken (the failure came before the backup finished).")
    return text


def failure_summary(record):
    """What happened, in one paragraph, for a failed rollback; None otherwise."""
    if record.get("status") != "failed":
        return None
    sentences = failure_sentences(record)
    error = " ".join((record.get("error") or "no message").split())
    return " ".join([sentences[0][:-1] + ": " + error + ("" if error.endswith(".") else ".")] + sentences[1:])


def build_report(record, impact=None, impact_text=None, secrets=()):
    """The report of one rollback as a JSON-able dict, its free text masked with secrets.

    record: the history fields plus ``verify`` (the final checks); impact: ``images`` (see
    _impact.image_changes), ``env`` (keys added/removed/changed) and ``changed_services``;
    impact_text: the lines the operator saw before confirming (masked already by the plan).
    """
    impact = impact or {}
    record = mask_record(record, secrets)
    checks = [{"name": c.get("name"), "passed": bool(c.get("passed")), "detail": c.get("detail")}
              for c in record.get("verify") or []]
    report = {
        "format": REPORT_FORMAT,
        "id": record.get("id"),
        "stack": record.get("stack"),
        "status": record.get("status"),
        "who": record.get("who"),
        "reason": record.get("reason"),
        "started_at": record.get("started_at"),
        "ended_at": record.get("ended_at"),
        "duration_s": record.get("duration_s"),
        "downtime_s": record.get("downtime_s"),
        "strategy": record.get("strategy"),
        "from": {"id": record.get("from"), "version": record.get("from_version")},
        "to": {"id": record.get("to"), "version": record.get("to_version")},
        "impact": {
            "changed_services": list(impact.get("changed_services") or
                                     [i["service"] for i in impact.get("images") or [] if i.get("change") != "unchanged"]),
            "images": list(impact.get("images") or []),
            "env_keys": dict({"added": [], "removed": [], "changed": []}, **(impact.get("env") or {})),
            "text": mask(list(impact_text or []), secrets),
        },
        "backup": {"id": record.get("backup_id"), "path": record.get("backup_path")},
        "verification": {"outcome": verification_outcome(checks, record.get("status")), "checks": checks},
        "failure": None,
    }
    if record.get("status") == "failed":
        report["failure"] = {"step": record.get("failed_step"), "error": record.get("error"),
                             "recovered": bool(record.get("recovered")), "summary": failure_summary(record)}
    return report


def _cell(value):
    text = "" if value is None else str(value)
    return " ".join(text.replace("|", "\\|").splitlines())


def _short(image_id):
    return (image_id or "").replace("sha256:", "")[:12]


def _image_line(change):
    before, after = change.get("from") or {}, change.get("to") or {}
    kind = change.get("change")
    if kind == "changed":
        return "- %s: %s [%s] %s %s [%s]" % (change["service"], before.get("image"), _short(before.get("image_id")), ARROW,
                                             after.get("image"), _short(after.get("image_id")))
    if kind == "added":
        return "- %s: added, %s [%s]" % (change["service"], after.get("image"), _short(after.get("image_id")))
    if kind == "removed":
        return "- %s: removed (was %s)" % (change["service"], before.get("image"))
    return "- %s: %s (unchanged)" % (change["service"], before.get("image"))


def render_report(report):
    """The Markdown report of one rollback, from build_report()'s dict."""
    duration = format_duration(report.get("duration_s"))
    backup = report.get("backup") or {}
    moved = "%s %s %s" % (release_label(report["from"]["id"], report["from"]["version"]), ARROW,
                          release_label(report["to"]["id"], report["to"]["version"]))
    rows = [
        ("status", report.get("status")),
        ("when", "%s %s %s (%s)" % (report.get("started_at"), ARROW, report.get("ended_at"), duration)),
        ("who", report.get("who")),
        ("reason", report.get("reason") or "(none given)"),
        ("from %s to" % ARROW, moved),
        ("strategy", report.get("strategy")),
        ("downtime", format_duration(report.get("downtime_s"))),
        ("backup", "%s at %s" % (backup.get("id"), backup.get("path")) if backup.get("path")
         else (backup.get("id") or "none")),
        ("verification", report["verification"]["outcome"]),
        ("rollback id", report.get("id")),
    ]
    lines = ["# Rollback of stack %s: %s" % (report.get("stack"), report.get("status")), "", "| | |", "|---|---|"]
    lines += ["| %s | %s |" % (key, _cell(value)) for key, value in rows]
    lines.append("")
    failure = report.get("failure")
    if failure:
        sentences = failure_sentences({
            "failed_step": failure["step"], "recovered": failure["recovered"], "from": report["from"]["id"],
            "from_version": report["from"]["version"], "backup_id": backup.get("id"), "backup_path": backup.get("path")})
        lines += ["## What happened", "", sentences[0], "", "```"]
        lines += (failure["error"] or "no message").replace("```", "` ` `").splitlines()
        lines += ["```", "", " ".join(sentences[1:]), ""]
    impact = report["impact"]
    lines += ["## Impact", ""]
    if impact["images"]:
        lines += [_image_line(change) for change in impact["images"]]
    else:
        lines.append("- images: not computed")
    env = impact["env_keys"]
    if any(env.values()):
        lines.append("- .env keys (values never shown): added %s; removed %s; changed %s" % (
            ", ".join(env["added"]) or "-", ", ".join(env["removed"]) or "-", ", ".join(env["changed"]) or "-"))
    else:
        lines.append("- .env keys: no change")
    lines.append("")
    if impact["text"]:
        lines += ["The impact as shown before the confirmation (secrets masked):", "", "```"] + impact["text"] + ["```", ""]
    checks = report["verification"]["checks"]
    if checks:
        lines += ["## Verification", ""]
        lines += ["- %s %s: %s" % ("PASS" if c["passed"] else "FAIL", c["name"], _cell(c.get("detail"))) for c in checks]
        lines.append("")
    return "\n".join(lines)


def write_record(state_dir, stack, record, report):
    """Write the reports (Markdown and JSON, 0600) and append the history line; returns the
    report paths. record and report are masked already (see build_report)."""
    paths = report_paths(state_dir, stack, record["id"])
    write_bytes_atomic(paths["markdown"], render_report(report).encode("utf-8"))
    write_json_atomic(paths["json"], report)
    append_line(history_path(state_dir, stack), json.dumps(history_entry(record), sort_keys=True))
    return paths


# -- reading -----------------------------------------------------------------------------------
def read_history(state_dir, stack):
    """Every history entry of the stack, oldest first; a torn last line is skipped."""
    return read_jsonl(history_path(state_dir, stack))


def read_jsonl(path):
    entries = []
    try:
        with open(path, "r", encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    entries.append(entry)
    except FileNotFoundError:
        pass
    return entries


def stacks_with_history(state_dir):
    """Names of the stacks under state_dir that have a history file, sorted."""
    try:
        names = sorted(os.listdir(state_dir))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        try:
            if os.path.isfile(history_path(state_dir, name)):
                found.append(name)
        except NameError_:
            continue
    return found


def netlify_entry(line):
    """A line of the Netlify rollback history (playbooks/netlify_rollback.yml) in the form of
    a stack history entry: the site is the stack, deploys are the releases."""
    before, after = line.get("from") or {}, line.get("to") or {}
    status, recovered = NETLIFY_OUTCOMES.get(line.get("outcome"), (line.get("outcome") or "unknown", None))
    entry = history_entry({
        "stack": "netlify:%s" % (line.get("site_name") or line.get("site_id")),
        "from": before.get("id"), "to": after.get("id"),
        "from_version": (before.get("commit_ref") or "")[:7] or None,
        "to_version": (after.get("commit_ref") or "")[:7] or None,
        "strategy": "netlify", "reason": line.get("reason"), "who": line.get("user"),
        "started_at": line.get("time"), "status": status, "recovered": recovered, "error": line.get("error"),
    })
    entry["source"] = "netlify"
    return entry


def netlify_report(line):
    """The reports a Netlify history line names (its "report", the .md; the .json beside it),
    or None: older lines have none, and a report may have been removed."""
    markdown = line.get("report")
    if not isinstance(markdown, str) or not markdown.endswith(".md") or not os.path.isfile(markdown):
        return None
    return {"markdown": markdown, "json": markdown[:-3] + ".json"}


def collect(state_dir, stack=None, limit=10, netlify_history_file=None):
    """The newest `limit` rollbacks, newest first: of `stack`, or of every stack under
    state_dir, plus the Netlify history file's when one is given. Each stack entry says where
    its reports are (null when they are missing)."""
    stacks = [check_name(stack, "stack")] if stack else stacks_with_history(state_dir)
    entries = []
    for name in stacks:
        for entry in read_history(state_dir, name):
            entry = dict(history_entry(entry), source="stack")
            entry["stack"] = entry["stack"] or name
            try:
                paths = report_paths(state_dir, name, entry["id"])
            except (NameError_, TypeError):
                paths = None
            entry["report"] = paths if paths and os.path.isfile(paths["markdown"]) else None
            entries.append(entry)
    if netlify_history_file:
        entries += [dict(netlify_entry(line), report=netlify_report(line)) for line in read_jsonl(netlify_history_file)]
    # Stable sort: entries of the same second keep their file order (the later line is newer).
    entries = sorted(enumerate(entries), key=lambda pair: (pair[1].get("started_at") or "", pair[0]), reverse=True)
    return stacks, [entry for _index, entry in entries[:limit]]


# -- the table ---------------------------------------------------------------------------------
def format_duration(seconds):
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        return "%dm%02ds" % divmod(seconds, 60)
    hours, rest = divmod(seconds, 3600)
    return "%dh%02dm" % (hours, rest // 60)


def format_status(entry):
    status = entry.get("status") or "unknown"
    if status == "failed":
        if entry.get("recovered") is True:
            return "failed, recovered"
        if entry.get("recovered") is False:
            return "failed, NOT recovered"
    return status


def table_row(entry):
    when = (entry.get("started_at") or "-").replace("T", " ").rstrip("Z")
    return (when, entry.get("stack") or "-", entry.get("who") or "unknown",
            "%s %s %s" % (release_label(entry.get("from"), entry.get("from_version")), ARROW,
                          release_label(entry.get("to"), entry.get("to_version"))),
            entry.get("strategy") or "-", format_duration(entry.get("duration_s")), format_status(entry))


def history_text(entries, where):
    """What ops.rollback.history prints: the table and where each report is, or that there is
    nothing to show."""
    if not entries:
        return "No rollback recorded for %s." % where
    lines = render_table(entries) + ["", "Reports (newest first):"]
    for entry in entries:
        if entry.get("report"):
            lines.append("  " + entry["report"]["markdown"])
        else:
            lines.append("  (none: missing)")
    return "\n".join(lines)


def render_table(entries):
    """Lines of a plain-text table, header first, columns padded to the widest cell."""
    rows = [TABLE_HEADER] + [tuple(" ".join(str(c).split()) for c in table_row(e)) for e in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEADER))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
