#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_record
short_description: Record the running state of a Compose stack as a release
version_added: 0.1.0
description:
  - Saves the compose files, C(.env) (mode 0600), extra files and the resolved config of a
    Compose project, with the image ID and repo digests each service runs, as a release under
    O(state_dir)/<stack>/releases/<release_id>/, and makes it the current release of the stack.
  - The release ID is derived from the content (file checksums and image IDs), so the same
    content gives the same ID on every host and recording it again changes nothing.
  - Each service image gets a keep tag (C(ops-rollback/<stack>_<service>:<release_id>)) so
    C(docker image prune) can't remove a rollback target. Only the newest O(keep) releases are
    kept; the current release is never pruned.
extends_documentation_fragment:
  - ops.rollback.attributes
  - ops.rollback.compose_project
  - ops.rollback.state
options:
  version:
    description: A human version label for the release, for example C(v1.2.3).
    type: str
  status:
    description:
      - Status to give the release. Use V(healthy) after a successful verification; only
        healthy releases are chosen by O(ops.rollback.rollback_plan#module:target=previous).
    type: str
    choices: [unverified, healthy]
    default: unverified
  extra_files:
    description: Globs, relative to O(project_dir), of further files to keep with the release.
    type: list
    elements: str
    default: []
  migrations_glob:
    description:
      - Glob, relative to O(project_dir), of database migration files. Their checksums are kept so
        a rollback can warn when migrations differ.
    type: str
  keep:
    description: How many releases to keep for the stack. Older ones are pruned, with their keep tags.
    type: int
    default: 5
attributes:
  check_mode:
    support: full
    details: Reports the release that would be recorded and whether it is new, and writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Recording the same running state again reports no change.
author:
  - ops.rollback maintainers (@ops-rollback)
"""

EXAMPLES = r"""
- name: Record the release that was just deployed
  ops.rollback.release_record:
    project_dir: /srv/shop
    project_name: shop
    version: v1.4.2
    status: healthy
    migrations_glob: migrations/*.sql
"""

RETURN = r"""
release:
  description: The recorded release.
  returned: always
  type: dict
  contains:
    id:
      description: Content-derived release ID.
      type: str
      sample: 3f9c2a1b7d4e
    version:
      description: Version label.
      type: str
    status:
      description: Status as operators read it (current, healthy, failed, rolled-back, unverified).
      type: str
    images:
      description: Per service, the image reference, the image ID and the keep tag.
      type: dict
new:
  description: Whether the release was not in the ledger before.
  returned: always
  type: bool
pruned:
  description: IDs of releases pruned beyond O(keep).
  returned: always
  type: list
  elements: str
path:
  description: Directory of the release on the managed host.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ops.rollback.plugins.module_utils._docker_cli import (
    DockerCli,
    DockerCliError,
    compose_project_argument_spec,
)
from ansible_collections.ops.rollback.plugins.module_utils._names import NameError_, check_name
from ansible_collections.ops.rollback.plugins.module_utils._release_store import ReleaseStore
from ansible_collections.ops.rollback.plugins.module_utils._releases import ReleaseError


def main():
    argument_spec = compose_project_argument_spec()
    argument_spec.update(
        state_dir=dict(type="path", default="/var/lib/ops-rollback"),
        version=dict(type="str"),
        status=dict(type="str", default="unverified", choices=["unverified", "healthy"]),
        extra_files=dict(type="list", elements="str", default=[]),
        migrations_glob=dict(type="str"),
        keep=dict(type="int", default=5),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    if params["keep"] < 1:
        module.fail_json(msg="keep must be at least 1, got %s" % params["keep"])
    if params["version"]:
        try:
            check_name(params["version"], "version")
        except NameError_ as exc:
            module.fail_json(msg="Recording a release of stack %s: %s (a version label is a rollback target); "
                             "nothing was changed" % (params["project_name"], str(exc)[:300]))
    try:
        cli = DockerCli(module, params["project_dir"], params["project_name"], params["files"])
        store = ReleaseStore(module, cli, params["state_dir"], params["project_name"])
        result = store.record(params["project_dir"], params["files"], version=params["version"],
                              status=params["status"], extra_globs=params["extra_files"],
                              migrations_glob=params["migrations_glob"], keep=params["keep"])
    except (ReleaseError, NameError_, DockerCliError, OSError) as exc:
        module.fail_json(msg="Recording a release of stack %s from %s failed: %s"
                         % (params["project_name"], params["project_dir"], exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
