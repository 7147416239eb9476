#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_info
short_description: List the recorded releases of a Compose stack
version_added: 0.1.0
description:
  - Reads the release ledger of a stack (see M(ops.rollback.release_record)) and returns its
    releases, newest first, with their status and whether their images are still present.
extends_documentation_fragment:
  - ops.rollback.attributes
  - ops.rollback.state
options:
  project_name:
    description: The Compose project name (the stack).
    type: str
    required: true
  check_images:
    description: Check with the local Docker engine that each release's images are present.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details: Read-only.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Read-only.
author:
  - ops.rollback maintainers (@ops-rollback)
"""

EXAMPLES = r"""
- name: List the releases of the shop stack
  ops.rollback.release_info:
    project_name: shop
  register: shop_releases

- name: Show them
  ansible.builtin.debug:
    msg: "{{ shop_releases.releases | map(attribute='id') | list }}"
"""

RETURN = r"""
current:
  description: ID of the current release, or null when none was recorded.
  returned: always
  type: str
releases:
  description: Releases, newest first.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Content-derived release ID.
      type: str
    version:
      description: Version label given when it was recorded.
      type: str
    recorded_at:
      description: When the release was first recorded (UTC, ISO 8601).
      type: str
    status:
      description: One of current, healthy, failed, rolled-back, unverified.
      type: str
    images:
      description: Per service, the image reference, image ID and keep tag.
      type: dict
    images_present:
      description: Whether every image of the release is present locally (with O(check_images)).
      type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ops.rollback.plugins.module_utils._docker_cli import DockerCli, DockerCliError
from ansible_collections.ops.rollback.plugins.module_utils._names import NameError_
from ansible_collections.ops.rollback.plugins.module_utils._release_store import ReleaseStore
from ansible_collections.ops.rollback.plugins.module_utils._releases import load_ledger, release_entry_view


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_name=dict(type="str", required=True),
            state_dir=dict(type="path", default="/var/lib/ops-rollback"),
            check_images=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        store = ReleaseStore(module, DockerCli(module) if params["check_images"] else None,
                             params["state_dir"], params["project_name"])
        ledger = load_ledger(params["state_dir"], store.stack)
        releases = [release_entry_view(ledger, r, store.images_present(r) if params["check_images"] else None)
                    for r in reversed(ledger["releases"])]
    except (NameError_, DockerCliError, OSError, ValueError) as exc:
        module.fail_json(msg="Listing the releases of stack %s failed: %s" % (params["project_name"], exc))
    module.exit_json(changed=False, current=ledger.get("current"), releases=releases)


if __name__ == "__main__":
    main()
