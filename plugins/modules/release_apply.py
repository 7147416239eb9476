#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_apply
short_description: Put a recorded release of a Compose stack in place and start it
version_added: 0.1.0
description:
  - Writes the release's compose files and C(.env) into the project directory, removes compose
    files and C(.env) the release does not have, and runs C(docker compose up --detach --wait).
  - Images are pinned to the recorded image IDs. A service whose image reference moved runs
    from the release's keep tag through a generated override file; the others keep their
    reference, so Compose recreates only the services whose config changes.
  - This is the execute step of M(ops.rollback.rollback_plan)'s recreate rollbacks and the way
    back of their emergency recovery.
extends_documentation_fragment:
  - ops.rollback.attributes
  - ops.rollback.state
options:
  project_dir:
    description: The Compose project's directory.
    type: path
    required: true
  project_name:
    description: The Compose project name (the stack).
    type: str
    required: true
  release_id:
    description: The release to put in place (see M(ops.rollback.release_info)).
    type: str
    required: true
  wait_timeout:
    description: Seconds to wait for the services to be running and healthy.
    type: int
    default: 120
  daemon_wait:
    description:
      - Seconds to wait for the Docker daemon to answer before anything else; C(0) does not wait.
      - For a recovery right after dockerd restarted, when the Engine is still starting.
    type: int
    default: 0
  intent:
    description:
      - What the caller is doing (for example C(from), C(to) and C(rollback_id) of a rollback). It
        is written to the ledger as C(in_progress) before anything changes, so that a run killed
        in the middle is resumed by the next one instead of being misread.
    type: dict
attributes:
  check_mode:
    support: full
    details: Reports which files and services would change, and changes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: When the project already holds the release's files and runs its images, nothing is done.
author:
  - ops.rollback maintainers (@ops-rollback)
"""

EXAMPLES = r"""
- name: Put release 3f9c2a1b7d4e of the shop stack back
  ops.rollback.release_apply:
    project_dir: /srv/shop
    project_name: shop
    release_id: 3f9c2a1b7d4e
"""

RETURN = r"""
files_written:
  description: Files of the release written into the project directory (names only).
  returned: always
  type: list
  elements: str
files_removed:
  description: Compose files or C(.env) removed because the release does not have them.
  returned: always
  type: list
  elements: str
pinned:
  description: Services started from a keep tag because their image reference moved.
  returned: always
  type: dict
services_to_update:
  description: Services that did not run the release's image before.
  returned: always
  type: list
  elements: str
recreated:
  description: Services whose container was recreated.
  returned: always
  type: list
  elements: str
compose_up_s:
  description: Seconds C(docker compose up --wait) took.
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ops.rollback.plugins.module_utils._docker_cli import DockerCli, DockerCliError
from ansible_collections.ops.rollback.plugins.module_utils._names import NameError_, check_name
from ansible_collections.ops.rollback.plugins.module_utils._release_apply import ReleaseApplier
from ansible_collections.ops.rollback.plugins.module_utils._release_store import ReleaseStore
from ansible_collections.ops.rollback.plugins.module_utils._releases import ReleaseError


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_dir=dict(type="path", required=True),
            project_name=dict(type="str", required=True),
            state_dir=dict(type="path", default="/var/lib/ops-rollback"),
            release_id=dict(type="str", required=True),
            wait_timeout=dict(type="int", default=120),
            daemon_wait=dict(type="int", default=0),
            intent=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        check_name(p["release_id"], "release_id")
        if p["daemon_wait"] < 0:
            module.fail_json(msg="daemon_wait: must not be negative, got %d" % p["daemon_wait"])
        cli = DockerCli(module, p["project_dir"], p["project_name"])
        if p["daemon_wait"]:
            cli.wait_for_daemon(p["daemon_wait"])
        applier = ReleaseApplier(module, cli, ReleaseStore(module, cli, p["state_dir"], p["project_name"]))
        result = applier.apply(p["project_dir"], p["release_id"], p["intent"], p["wait_timeout"])
    except (ReleaseError, NameError_) as exc:
        module.fail_json(msg="Applying release_id=%s of stack %s: %s" % (p["release_id"], p["project_name"], exc))
    except (DockerCliError, OSError) as exc:
        module.fail_json(msg="Applying release %s of stack %s failed: %s" % (p["release_id"], p["project_name"], exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
