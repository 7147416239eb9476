#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rollback_plan
short_description: Choose, validate and explain the target of a Compose stack rollback
version_added: 0.1.0
description:
  - Steps 1 to 3 of every rollback. Records the running state as a release when it was never
    recorded, chooses the target release, validates it and works out the impact.
  - V(previous) is the newest release before the current one that was verified healthy, never
    one that was rolled back from or failed, so rolling back twice goes further back each time.
  - Validation checks that the target's files are stored, its images are present locally, its
    compose config is valid and its published ports are free or used by this stack only.
    Problems are returned in RV(problems) (the caller fails on them before any change).
  - The impact names, per service, the image change; the C(.env) keys added, removed or
    changed (values masked); a unified diff of the resolved config with every environment and
    C(.env) value masked; migration files that differ; an estimated downtime from earlier
    rollbacks.
  - When an earlier rollback of the stack was interrupted after it began to execute, the plan
    resumes it (same origin, same target) so that running again converges.
extends_documentation_fragment:
  - ops.rollback.attributes
  - ops.rollback.compose_project
  - ops.rollback.state
options:
  target:
    description: V(previous), a release ID (or a unique prefix of 6 characters or more) or a version label.
    type: str
    default: previous
  strategy:
    description: The rollback strategy, for the downtime estimate.
    type: str
    choices: [recreate, blue_green]
    default: recreate
  extra_files:
    description: Globs of further files kept with a release recorded here (see M(ops.rollback.release_record)).
    type: list
    elements: str
    default: []
  migrations_glob:
    description: Glob, relative to O(project_dir), of migration files to compare between the releases.
    type: str
attributes:
  check_mode:
    support: full
    details: Computes the same plan; does not record the running state.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Records the running state only once.
author:
  - ops.rollback maintainers (@ops-rollback)
"""

EXAMPLES = r"""
- name: Plan a rollback of the shop stack to the previous healthy release
  ops.rollback.rollback_plan:
    project_dir: /srv/shop
    project_name: shop
    migrations_glob: migrations/*.sql
  register: plan

- name: Show the impact
  ansible.builtin.debug:
    msg: "{{ plan.impact_text }}"
"""

RETURN = r"""
current:
  description: The release running now.
  returned: always
  type: dict
target:
  description: The release the rollback goes to.
  returned: always
  type: dict
noop:
  description: The target is the release that runs already; nothing to do.
  returned: always
  type: bool
problems:
  description: Why the target can't be used; empty when it can.
  returned: always
  type: list
  elements: str
impact:
  description: Structured impact (images, env keys, migrations, downtime, masked config diff, changed services).
  returned: when the target is valid and differs from the current release
  type: dict
impact_text:
  description: The impact as lines of text for the operator.
  returned: always
  type: list
  elements: str
recorded_current:
  description: Whether the running state had to be recorded as a new current release.
  returned: always
  type: bool
resumed:
  description: Whether an interrupted rollback of the stack is being resumed.
  returned: always
  type: bool
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
from ansible_collections.ops.rollback.plugins.module_utils._rollback_plan import RollbackPlanner


def main():
    argument_spec = compose_project_argument_spec()
    argument_spec.update(
        state_dir=dict(type="path", default="/var/lib/ops-rollback"),
        target=dict(type="str", default="previous"),
        strategy=dict(type="str", default="recreate", choices=["recreate", "blue_green"]),
        extra_files=dict(type="list", elements="str", default=[]),
        migrations_glob=dict(type="str"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    p = module.params
    try:
        if p["target"] != "previous":
            check_name(p["target"], "target")
        cli = DockerCli(module, p["project_dir"], p["project_name"], p["files"])
        planner = RollbackPlanner(module, cli, ReleaseStore(module, cli, p["state_dir"], p["project_name"]))
        result = planner.plan(p["project_dir"], p["files"], p["target"], p["strategy"], p["extra_files"], p["migrations_glob"])
    except (ReleaseError, NameError_) as exc:
        module.fail_json(msg="Planning the rollback of stack %s: %s" % (p["project_name"], exc))
    except (DockerCliError, OSError) as exc:
        module.fail_json(msg="Planning the rollback of stack %s failed: %s" % (p["project_name"], exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
