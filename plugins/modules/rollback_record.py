#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rollback_record
short_description: Record a finished rollback in the stack's history and release ledger
version_added: 0.1.0
description:
  - Appends one line to O(state_dir)/<stack>/history.jsonl, writes a Markdown and a JSON report
    under O(state_dir)/<stack>/reports/<rollback_id>.md and C(.json) (mode 0600, in 0700
    directories), and updates the ledger.
  - The report says who, when, why, from which release to which (IDs and version labels),
    the strategy, the impact (per service image change, C(.env) keys added, removed or changed,
    and O(impact_text)), the backup (O(backup_id), O(backup_path)), the verification outcome,
    the duration and the status; after a failure also the failed step, the error, whether the
    emergency recovery brought the origin back, and where the backup is.
  - The image changes and C(.env) keys are read from the two releases in the ledger. Every
    C(.env) value and environment value of both releases is masked wherever it would appear
    in the history line or the reports (reason, error, impact text, check details). After a success the target
    becomes the current release (healthy) and the origin is marked rolled-back, so it is never
    chosen as V(previous) again. After a failure the target is marked failed and the origin
    stays current.
  - Clears the C(in_progress) marker that M(ops.rollback.release_apply) wrote.
extends_documentation_fragment:
  - ops.rollback.attributes
  - ops.rollback.state
options:
  project_name:
    description: The stack (Compose project name).
    type: str
    required: true
  rollback_id:
    description: ID of the rollback run.
    type: str
    required: true
  status:
    description: How the rollback ended.
    type: str
    required: true
    choices: [succeeded, failed, noop]
  from_release:
    description: ID of the release that ran before.
    type: str
    required: true
  to_release:
    description: ID of the target release.
    type: str
    required: true
  strategy:
    description: The strategy used.
    type: str
    default: recreate
  reason:
    description: Why the rollback was done, as the operator said.
    type: str
    default: ""
  who:
    description: Who started it (user, or AWX job and user).
    type: str
    default: unknown
  started_at:
    description: When it started (UTC, ISO 8601).
    type: str
    required: true
  backup_id:
    description: ID of the backup taken before the execute step.
    type: str
  backup_path:
    description: Where that backup is (shown in the report and kept in the history line).
    type: path
  failed_step:
    description: The step that failed.
    type: str
  error:
    description: The error of the failed step.
    type: str
  recovered:
    description: Whether the emergency recovery brought the origin release back, healthy.
    type: bool
  downtime_s:
    description: Seconds the changed services were being replaced.
    type: float
  impact_text:
    description: The impact report lines (from M(ops.rollback.rollback_plan)), masked.
    type: list
    elements: str
    default: []
  verify_checks:
    description: The checks of the final verification (from the verify role).
    type: list
    elements: dict
    default: []
attributes:
  check_mode:
    support: full
    details: Returns the entry it would write and writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every call records a rollback.
author:
  - ops.rollback maintainers (@ops-rollback)
"""

EXAMPLES = r"""
- name: Record the rollback
  ops.rollback.rollback_record:
    project_name: shop
    rollback_id: 20261122T043000Z-1234
    status: succeeded
    from_release: 3f9c2a1b7d4e
    to_release: 0b1c2d3e4f50
    started_at: "2026-11-22T04:30:00Z"
    reason: checkout errors after v1.5.0
"""

RETURN = r"""
entry:
  description: The history entry.
  returned: always
  type: dict
report:
  description: Paths of the Markdown and JSON reports.
  returned: always
  type: dict
  contains:
    markdown:
      description: The Markdown report.
      type: str
      returned: always
      sample: /var/lib/ops-rollback/shop/reports/20261122T043000Z-1234.md
    json:
      description: The JSON report (the same content, for machines).
      type: str
      returned: always
      sample: /var/lib/ops-rollback/shop/reports/20261122T043000Z-1234.json
"""

import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ops.rollback.plugins.module_utils._history import (
    build_report,
    history_entry,
    mask_record,
    release_facts,
    report_paths,
    write_record,
)
from ansible_collections.ops.rollback.plugins.module_utils._names import NameError_, check_name
from ansible_collections.ops.rollback.plugins.module_utils._releases import (
    ReleaseError,
    find_release,
    load_ledger,
    save_ledger,
    set_status,
    utc_now,
)


def update_ledger(ledger, p):
    """Statuses after the rollback; pure apart from the timestamps set_status adds."""
    origin, target = p["from_release"], p["to_release"]
    if p["status"] == "succeeded":
        set_status(ledger, origin, "rolled-back")
        set_status(ledger, target, "healthy")
        ledger["current"] = target
        find_release(ledger, target)["deployed_at"] = utc_now()
    elif p["status"] == "failed" and origin != target:
        set_status(ledger, target, "failed")
        if p["recovered"]:
            ledger["current"] = origin
    if p["backup_id"] and find_release(ledger, origin) is not None:
        backups = find_release(ledger, origin).setdefault("backups", [])
        if p["backup_id"] not in backups:
            backups.append(p["backup_id"])
    ledger.pop("in_progress", None)
    return ledger


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_name=dict(type="str", required=True),
            state_dir=dict(type="path", default="/var/lib/ops-rollback"),
            rollback_id=dict(type="str", required=True),
            status=dict(type="str", required=True, choices=["succeeded", "failed", "noop"]),
            from_release=dict(type="str", required=True),
            to_release=dict(type="str", required=True),
            strategy=dict(type="str", default="recreate"),
            reason=dict(type="str", default=""),
            who=dict(type="str", default="unknown"),
            started_at=dict(type="str", required=True),
            backup_id=dict(type="str"),
            backup_path=dict(type="path"),
            failed_step=dict(type="str"),
            error=dict(type="str"),
            recovered=dict(type="bool"),
            downtime_s=dict(type="float"),
            impact_text=dict(type="list", elements="str", default=[]),
            verify_checks=dict(type="list", elements="dict", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    ended = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    try:
        started = datetime.datetime.strptime(p["started_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        module.fail_json(msg="started_at=%r is not a UTC time like 2026-11-22T04:30:00Z" % p["started_at"])
    record = {
        "id": p["rollback_id"], "stack": p["project_name"], "from": p["from_release"], "to": p["to_release"],
        "strategy": p["strategy"], "reason": p["reason"], "who": p["who"], "started_at": p["started_at"],
        "ended_at": ended.strftime("%Y-%m-%dT%H:%M:%SZ"), "duration_s": (ended - started).total_seconds(),
        "downtime_s": p["downtime_s"], "status": p["status"], "backup_id": p["backup_id"],
        "backup_path": p["backup_path"], "failed_step": p["failed_step"], "error": p["error"],
        "recovered": p["recovered"],
        "verify": [{"name": c.get("name"), "passed": c.get("passed"), "detail": c.get("detail")} for c in p["verify_checks"]],
    }
    try:
        report_path = report_paths(p["state_dir"], check_name(p["project_name"], "project_name"),
                                   check_name(p["rollback_id"], "rollback_id"))
        ledger = load_ledger(p["state_dir"], p["project_name"])
        facts = release_facts(p["state_dir"], p["project_name"], ledger, p["from_release"], p["to_release"])
        record.update(from_version=facts["from_version"], to_version=facts["to_version"])
        record = mask_record(record, facts["secrets"])
        report = build_report(record, facts["impact"], p["impact_text"], facts["secrets"])
        if not module.check_mode:
            if p["status"] != "noop":
                save_ledger(p["state_dir"], p["project_name"], update_ledger(ledger, p))
            report_path = write_record(p["state_dir"], p["project_name"], record, report)
    except (ReleaseError, NameError_) as exc:
        module.fail_json(msg="Recording rollback %s of stack %s: %s" % (p["rollback_id"], p["project_name"], exc))
    except (OSError, ValueError) as exc:
        module.fail_json(msg="Recording rollback %s of stack %s failed: %s" % (p["rollback_id"], p["project_name"], exc))
    module.exit_json(changed=True, entry=history_entry(record), report=report_path)


if __name__ == "__main__":
    main()
