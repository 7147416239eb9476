#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: stack_lock
short_description: Take or release the per-stack lock of rollbacks and restores
version_added: 0.1.0
description:
  - Only one rollback or restore of a stack may run at a time. V(present) takes
    O(state_dir)/<stack>/lock for O(run_id); V(absent) releases it if this run holds it.
  - A lock held by another run is refused with a message that names its owner and says how to
    clear it.
  - A lock left behind by a killed run is detected and taken over, with a note, when its
    ansible-playbook ran on this controller and no longer exists, or when it is older than
    O(max_age).
  - The action plugin of the same name fills O(controller) and O(controller_pid).
extends_documentation_fragment:
  - ops.rollback.attributes
  - ops.rollback.attributes.ACTIONGROUPS
  - ops.rollback.state
options:
  project_name:
    description: The stack (Compose project name).
    type: str
    required: true
  project_dir:
    description:
      - The stack's project directory. When given, taking the lock is refused if it does not
        exist, so that a mistyped path fails before anything is written.
    type: path
  state:
    description: Take (V(present)) or release (V(absent)) the lock.
    type: str
    choices: [present, absent]
    default: present
  run_id:
    description: ID of the run that takes or releases the lock.
    type: str
    required: true
  operation:
    description: What the run does (rollback, restore), for the message another run sees.
    type: str
    default: rollback
  who:
    description:
      - Who started the run (user or AWX job), for the message another run sees.
      - The action plugin fills in the controller's user when it is not given.
    type: str
    default: unknown
  max_age:
    description: Seconds after which a lock is considered stale whoever holds it. V(0) disables the limit.
    type: int
    default: 3600
  break_lock:
    description: Take the lock even when another run holds it. Only for a lock you know is stale.
    type: bool
    default: false
  controller:
    description: Host name of the Ansible controller. Filled in by the action plugin.
    type: str
  controller_pid:
    description: PID of ansible-playbook on the controller. Filled in by the action plugin.
    type: int
attributes:
  action:
    support: full
    details: The action plugin adds the controller identity.
  check_mode:
    support: full
    details: Reports whether the lock would be taken or released, and takes or removes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Taking a lock this run holds, or releasing one it does not hold, is no change.
author:
  - ops.rollback maintainers (@ops-rollback)
"""

EXAMPLES = r"""
- name: Lock the stack for this rollback
  ops.rollback.stack_lock:
    project_name: shop
    run_id: "{{ rollback_run_id }}"
    who: "{{ awx_user_name | default('cli') }}"

- name: Release it
  ops.rollback.stack_lock:
    project_name: shop
    run_id: "{{ rollback_run_id }}"
    state: absent
"""

RETURN = r"""
previous_owner:
  description: The owner of a stale lock that was taken over, or of the lock this run already held.
  returned: when a lock was there before
  type: dict
note:
  description: What happened to a stale lock, for the operator.
  returned: always
  type: str
path:
  description: Path of the lock file.
  returned: always
  type: str
who:
  description: Who holds the lock for this run (O(who)).
  returned: always
  type: str
"""

import datetime
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ops.rollback.plugins.module_utils._lock import LockError, acquire, lock_path, release
from ansible_collections.ops.rollback.plugins.module_utils._names import NameError_, check_name


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_name=dict(type="str", required=True),
            state_dir=dict(type="path", default="/var/lib/ops-rollback"),
            project_dir=dict(type="path"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            run_id=dict(type="str", required=True),
            operation=dict(type="str", default="rollback"),
            who=dict(type="str", default="unknown"),
            max_age=dict(type="int", default=3600),
            break_lock=dict(type="bool", default=False),
            controller=dict(type="str"),
            controller_pid=dict(type="int"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        check_name(p["project_name"], "project_name")
        check_name(p["run_id"], "run_id")
        path = lock_path(p["state_dir"], p["project_name"])
        if p["state"] == "absent":
            changed = release(p["state_dir"], p["project_name"], p["run_id"], module.check_mode)
            module.exit_json(changed=changed, path=path, note="", who=p["who"])
        if p["project_dir"] and not os.path.isdir(p["project_dir"]):
            module.fail_json(msg="project_dir %s does not exist (stack %s); nothing was changed" % (p["project_dir"], p["project_name"]))
        me = {
            "run_id": p["run_id"],
            "operation": p["operation"],
            "who": p["who"],
            "controller": p["controller"],
            "controller_pid": p["controller_pid"],
            "taken_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        changed, previous, note = acquire(p["state_dir"], p["project_name"], me, p["max_age"], p["break_lock"], module.check_mode)
    except (LockError, NameError_) as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg="Locking stack %s in %s failed: %s" % (p["project_name"], p["state_dir"], exc))
    result = dict(changed=changed, path=path, note=note or "", who=p["who"])
    if previous:
        result["previous_owner"] = previous
    if note:
        module.warn(note)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
