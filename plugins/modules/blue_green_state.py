#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: blue_green_state
short_description: Read or set which color of a blue-green Compose stack serves
version_added: 0.1.0
description:
  - The active color of a blue-green stack and the release each color runs are kept in
    C(<state_dir>/<project_name>/blue_green.json) on the host.
  - With O(state=read), returns them, plus the color a release goes to (O(release_id)).
  - With O(state=active), records O(color) as the active color running O(release_id), makes it
    the ledger's current release, and puts the release's compose files and C(.env) into
    O(project_dir), so that the project directory always describes what serves (what
    M(ops.rollback.release_record) and the rollback read).
extends_documentation_fragment:
  - ops.rollback.attributes
  - ops.rollback.state
options:
  project_name:
    description: The stack (the shared Compose project's name).
    type: str
    required: true
  project_dir:
    description: The stack's project directory. Required with O(state=active).
    type: path
  state:
    description: Read the state, or record a color as active.
    type: str
    default: read
    choices: [read, active]
  color:
    description: The color that now serves. Required with O(state=active).
    type: str
    choices: [blue, green]
  release_id:
    description:
      - With O(state=active), the release the color runs (required).
      - With O(state=read), the release to place; RV(target_color) says which color it goes to.
    type: str
  verified:
    description:
      - With O(state=active), the release passed its checks (the switch verified it on its own
        ports and through the proxy); an C(unverified) release is then marked C(healthy) in the
        ledger. A C(failed) or C(rolled-back) release keeps its status.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: Reports what would be recorded and written, and changes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
author:
  - ops.rollback maintainers (@ops-rollback)
"""

EXAMPLES = r"""
- name: Read which color serves the shop stack
  ops.rollback.blue_green_state:
    project_name: shop
    release_id: 3f9c2a1b7d4e
  register: colors

- name: Record green as the serving color
  ops.rollback.blue_green_state:
    project_name: shop
    project_dir: /srv/shop
    state: active
    color: green
    release_id: 3f9c2a1b7d4e
"""

RETURN = r"""
active:
  description: The color that serves, or null on a stack that never switched.
  returned: always
  type: str
idle:
  description: The other color (blue on a stack that never switched).
  returned: always
  type: str
colors:
  description: Color -> C(release_id) and C(since) (when it became active).
  returned: always
  type: dict
active_release_id:
  description: The release the active color runs, or null.
  returned: always
  type: str
target_color:
  description: With O(release_id), the color it goes to - the active one when it already runs it.
  returned: when release_id is given
  type: str
release_version:
  description: With O(release_id), the release's version label (null when it has none).
  returned: when release_id is given and state is read
  type: str
files_written:
  description: Release files written into O(project_dir).
  returned: when state is active
  type: list
  elements: str
files_removed:
  description: Compose files or C(.env) removed from O(project_dir) because the release does not have them.
  returned: when state is active
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ops.rollback.plugins.module_utils._blue_green_state import activate, read
from ansible_collections.ops.rollback.plugins.module_utils._names import NameError_, check_name
from ansible_collections.ops.rollback.plugins.module_utils._releases import ReleaseError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_name=dict(type="str", required=True),
            project_dir=dict(type="path"),
            state_dir=dict(type="path", default="/var/lib/ops-rollback"),
            state=dict(type="str", default="read", choices=["read", "active"]),
            color=dict(type="str", choices=["blue", "green"]),
            release_id=dict(type="str"),
            verified=dict(type="bool", default=False),
        ),
        required_if=[("state", "active", ["project_dir", "color", "release_id"])],
        supports_check_mode=True,
    )
    p = module.params
    try:
        check_name(p["project_name"], "project_name")
        if p["release_id"]:
            check_name(p["release_id"], "release_id")
        if p["state"] == "read":
            result = dict(read(p["state_dir"], p["project_name"], p["release_id"]), changed=False)
        else:
            result = activate(p["state_dir"], p["project_name"], p["project_dir"], p["color"], p["release_id"],
                              verified=p["verified"], check_mode=module.check_mode)
    except (ReleaseError, NameError_, ValueError, OSError) as exc:
        module.fail_json(msg="Blue-green state of stack %s: %s" % (p["project_name"], exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
