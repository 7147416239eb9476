#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: guard_state
short_description: Count a Compose stack's failed checks and decide whether the guard rolls back
version_added: 0.1.0
description:
  - The decisions of the scheduled guard (playbook C(ops.rollback.guard)). Keeps a
    consecutive-failure counter in O(state_dir)/<stack>/guard.json (mode 0600, replaced
    atomically) and decides, from the result of a check, the lock, the release ledger and the
    rollback history, what the guard does.
  - With O(event=checked) it records the result of one check (O(passed)) and returns
    RV(decision). A held lock (a rollback or restore runs) or an interrupted rollback gives
    V(locked) and the check is not counted. A passed check gives V(healthy) and resets the
    counter. A failed check adds one to the counter (which restarts when the running release
    changed) and gives V(failing) below O(failures_before_rollback); at it, V(no_target) when
    no known-good (healthy) release was deployed before the running one, V(report_only) when
    O(auto_rollback) is false, V(cooldown) when an automatic rollback of the stack started less
    than O(cooldown) seconds ago, else V(rollback), and then the attempt is recorded (it starts
    the cooldown even if the run is killed).
  - With O(event=finished) it records how the automatic rollback O(rollback_id) ended.
  - The running release is identified by the content of the project (as
    M(ops.rollback.release_record) would record it), so the target is the one the rollback's
    plan will choose even when the broken deploy was never recorded.
extends_documentation_fragment:
  - ops.rollback.attributes
  - ops.rollback.state
options:
  project_name:
    description: The stack (Compose project name).
    type: str
    required: true
  project_dir:
    description:
      - The stack's project directory, to identify the running release. Without it the
        ledger's current release is taken as the running one.
    type: path
  files:
    description: Compose files of the project, relative to O(project_dir); empty means Compose's default names.
    type: list
    elements: path
    default: []
  event:
    description: V(checked) records the result of a check and decides; V(finished) records the end of an automatic rollback.
    type: str
    choices: [checked, finished]
    default: checked
  passed:
    description: Whether the check passed. Required with O(event=checked).
    type: bool
  failed_checks:
    description: Names of the checks that failed, for the counter's record and the messages (URLs lose user info and query).
    type: list
    elements: str
    default: []
  failures_before_rollback:
    description: Failed checks in a row that make the guard act.
    type: int
    default: 3
  auto_rollback:
    description: Roll back automatically at the threshold. When false the guard only reports.
    type: bool
    default: false
  cooldown:
    description: Seconds after an automatic rollback of the stack during which no other one starts.
    type: int
    default: 3600
  rollback_id:
    description: ID of the automatic rollback the guard starts (O(event=checked)) or that ended (O(event=finished)).
    type: str
  outcome:
    description:
      - How the automatic rollback ended, with O(event=finished). V(refused) (refused before any
        change) and V(locked) (a human took the lock first) do not hold the cooldown.
    type: str
    choices: [succeeded, failed, refused, locked]
attributes:
  check_mode:
    support: full
    details: Returns the same decision and writes nothing (the counter does not move).
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every check is counted; that is its purpose.
notes:
  - The lock is only read, never taken or broken; the playbook takes it with M(ops.rollback.stack_lock).
author:
  - ops.rollback maintainers (@ops-rollback)
"""

EXAMPLES = r"""
- name: Count the check and decide
  ops.rollback.guard_state:
    project_name: shop
    project_dir: /srv/shop
    passed: "{{ verify_result.passed }}"
    failed_checks: "{{ verify_result.failed_checks }}"
    failures_before_rollback: 3
    auto_rollback: true
    cooldown: 3600
    rollback_id: "{{ run_id }}"
  register: guard

- name: Record that the automatic rollback succeeded
  ops.rollback.guard_state:
    project_name: shop
    event: finished
    rollback_id: "{{ run_id }}"
    outcome: succeeded
"""

RETURN = r"""
decision:
  description: What the guard does; one of V(locked), V(healthy), V(failing), V(no_target), V(report_only), V(cooldown), V(rollback).
  returned: with O(event=checked)
  type: str
msg:
  description: The decision in a sentence for the operator.
  returned: always
  type: str
consecutive_failures:
  description: Failed checks in a row on the running release, this one included.
  returned: with O(event=checked)
  type: int
threshold:
  description: O(failures_before_rollback).
  returned: with O(event=checked)
  type: int
counted:
  description: Whether this check was counted (not when the stack is locked).
  returned: with O(event=checked)
  type: bool
notify:
  description: Whether this decision is news for a notification (every rollback; each other alert once per failure streak).
  returned: with O(event=checked)
  type: bool
release:
  description: ID of the running release.
  returned: with O(event=checked)
  type: str
target:
  description: The last known-good release (id, version, status...), when the threshold is reached and one exists.
  returned: with O(event=checked)
  type: dict
failed_checks:
  description: O(failed_checks), redacted.
  returned: with O(event=checked)
  type: list
  elements: str
path:
  description: The guard's state file.
  returned: always
  type: str
state:
  description: The guard's state after this call (written unless in check mode).
  returned: always
  type: dict
"""

import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ops.rollback.plugins.module_utils._docker_cli import DockerCli, DockerCliError
from ansible_collections.ops.rollback.plugins.module_utils._guard import (
    decide,
    finish_rollback,
    load_state,
    save_state,
    start_rollback,
    state_path,
)
from ansible_collections.ops.rollback.plugins.module_utils._history import read_history
from ansible_collections.ops.rollback.plugins.module_utils._lock import describe, lock_path, read_lock
from ansible_collections.ops.rollback.plugins.module_utils._names import NameError_, check_name
from ansible_collections.ops.rollback.plugins.module_utils._release_store import ReleaseStore
from ansible_collections.ops.rollback.plugins.module_utils._releases import ReleaseError, load_ledger, release_entry_view


def running_release(module, p):
    """The snapshot of what runs, or None (no project_dir, or it can't be read)."""
    if not p["project_dir"]:
        return None
    cli = DockerCli(module, p["project_dir"], p["project_name"], p["files"])
    try:
        return ReleaseStore(module, cli, p["state_dir"], p["project_name"]).snapshot(p["project_dir"], p["files"])
    except (ReleaseError, DockerCliError, ValueError) as exc:
        module.warn("The running release of stack %s could not be identified (%s); the ledger's current release "
                    "counts as the running one." % (p["project_name"], exc))
        return None


def checked(module, p, now):
    state = load_state(p["state_dir"], p["project_name"])
    ledger = load_ledger(p["state_dir"], p["project_name"])
    owner = read_lock(lock_path(p["state_dir"], p["project_name"]))
    snap = running_release(module, p) if owner is None else None
    settings = {"failures_before_rollback": p["failures_before_rollback"], "auto_rollback": p["auto_rollback"],
                "cooldown": p["cooldown"]}
    new, out = decide(state, p["passed"], p["failed_checks"], now, settings, ledger,
                      running_id=snap["id"] if snap else None, running=snap, lock_owner=owner,
                      lock_note=describe(owner) if owner else None, history=read_history(p["state_dir"], p["project_name"]))
    if out["decision"] == "rollback":
        if not p["rollback_id"]:
            module.fail_json(msg="guard_state: rollback_id is required to start an automatic rollback of stack %s" % p["project_name"])
        new = start_rollback(new, p["rollback_id"], now, out["release"], out["target"]["id"])
    if out["target"] is not None:
        out["target"] = release_entry_view(ledger, out["target"])
    changed = new != state
    if changed and not module.check_mode:
        save_state(p["state_dir"], p["project_name"], new)
    return dict(out, changed=changed, state=new)


def finished(module, p, now):
    if not p["rollback_id"] or not p["outcome"]:
        module.fail_json(msg="guard_state: event=finished needs rollback_id and outcome (stack %s)" % p["project_name"])
    state = load_state(p["state_dir"], p["project_name"])
    new = None
    try:
        new = finish_rollback(state, p["rollback_id"], p["outcome"], now)
    except ValueError as exc:
        module.fail_json(msg="Recording the end of the guard's rollback of stack %s: %s" % (p["project_name"], exc))
    if not module.check_mode:
        save_state(p["state_dir"], p["project_name"], new)
    return dict(changed=True, state=new, msg="Automatic rollback %s of stack %s: %s" % (p["rollback_id"], p["project_name"], p["outcome"]))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_name=dict(type="str", required=True),
            project_dir=dict(type="path"),
            files=dict(type="list", elements="path", default=[]),
            state_dir=dict(type="path", default="/var/lib/ops-rollback"),
            event=dict(type="str", default="checked", choices=["checked", "finished"]),
            passed=dict(type="bool"),
            failed_checks=dict(type="list", elements="str", default=[]),
            failures_before_rollback=dict(type="int", default=3),
            auto_rollback=dict(type="bool", default=False),
            cooldown=dict(type="int", default=3600),
            rollback_id=dict(type="str"),
            outcome=dict(type="str", choices=["succeeded", "failed", "refused", "locked"]),
        ),
        required_if=[("event", "checked", ["passed"])],
        supports_check_mode=True,
    )
    p = module.params
    if p["failures_before_rollback"] < 1:
        module.fail_json(msg="failures_before_rollback=%d must be 1 or more" % p["failures_before_rollback"])
    if p["cooldown"] < 0:
        module.fail_json(msg="cooldown=%d must be 0 or more seconds" % p["cooldown"])
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    path, result = None, {}
    try:
        check_name(p["project_name"], "project_name")
        if p["rollback_id"]:
            check_name(p["rollback_id"], "rollback_id")
        path = state_path(p["state_dir"], p["project_name"])
        result = checked(module, p, now) if p["event"] == "checked" else finished(module, p, now)
    except NameError_ as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg="Guard state of stack %s in %s failed: %s" % (p["project_name"], p["state_dir"], exc))
    module.exit_json(path=path, **result)


if __name__ == "__main__":
    main()
