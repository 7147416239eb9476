#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: compose_restore
short_description: Restore a Docker Compose stack from a backup of ops.rollback.compose_backup
version_added: 0.1.0
description:
  - Restores the volumes (and, when asked, the bind mounts and the compose files with C(.env)) of
    one Compose project from a backup written by M(ops.rollback.compose_backup), in this order.
  - 1. Checks the manifest and the sha256 of every file of the backup (over the ciphertext when
    encrypted). On any mismatch it fails naming each file, and nothing is touched. An encrypted
    backup needs O(age_identity_file) with an identity the backup was encrypted to; the identity is
    proved on the smallest encrypted file before anything changes.
  - 2. Works out what it replaces and refuses, still before any change, when a volume is used by a
    container outside the project, or the stack, a volume or a hook is unknown.
  - 3. Stops the services that use the volumes, and takes a safety backup of their current
    volumes and config files (encrypted to the same recipients), so that the restore itself can be
    undone by restoring RV(safety_backup_id).
  - 4. Removes those services' containers, empties each volume (removes it and creates it again
    with the same driver, options and labels, so Compose still owns it) and fills it from the
    archive through C(docker cp --archive) into a helper container that is never started.
    Ownership and modes come back as archived.
  - 5. Writes the config files back when O(config_files=true), then starts the services that ran
    before the restore or when the backup was taken (C(docker compose up --detach --wait)), and
    feeds dumps to O(restore_hooks).
extends_documentation_fragment:
  - ops.rollback.attributes
  - ops.rollback.compose_project
  - ops.rollback.backup
options:
  backup_id:
    description:
      - The backup to restore, or C(latest) for the newest complete and valid backup (safety
        backups taken by a restore are not candidates for C(latest)).
    type: str
    default: latest
  age_identity_file:
    description: File on the managed host with the age identity (C(AGE-SECRET-KEY-1...)) for an encrypted backup.
    type: path
  volumes:
    description: Restore the backup's named volumes (or those of O(volume_names)).
    type: bool
    default: true
  volume_names:
    description: Only these volumes, by compose key or full name.
    type: list
    elements: str
    default: []
  bind_mounts:
    description: Restore the backup's bind-mounted directories too (their content is replaced).
    type: bool
    default: false
  config_files:
    description: Write the compose files and C(.env) of the backup back (C(.env) at C(0600)).
    type: bool
    default: false
  safety_backup:
    description: Take the safety backup of step 3. Turning it off makes the restore impossible to undo.
    type: bool
    default: true
  helper_image:
    description: Local image for the helper containers. Default an image of the stack (or of the backup) that is on this host.
    type: str
  volume_source:
    description: How the safety backup reads the volumes (see M(ops.rollback.compose_backup)).
    type: str
    choices: [auto, mountpoint, api]
    default: auto
  start_services:
    description: Start the services afterwards (those running before the restore or at backup time).
    type: bool
    default: true
  wait:
    description: Wait until the started services run and are healthy (C(docker compose up --wait)).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for O(wait).
    type: int
    default: 120
  restore_hooks:
    description:
      - Dumps of the backup's hooks to feed, after the services started, to a command's standard
        input in a service container (C(docker exec --interactive)), such as C(psql) for a C(pg_dump).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the backup hook whose dump is fed.
        type: str
        required: true
      service:
        description: Compose service whose first running container runs the command.
        type: str
        required: true
      argv:
        description: The command as an argument list.
        type: list
        elements: str
        required: true
      user:
        description: User to run it as.
        type: str
attributes:
  check_mode:
    support: full
    details: Verifies the backup and reports what it would replace (RV(would_replace)); changes nothing.
  diff_mode:
    support: full
    details: Volumes and config files before and after, by name and sha256 only; file contents never show.
  idempotent:
    support: none
    details: Every run replaces the data and takes a safety backup.
requirements:
  - Python library C(zstandard) on the managed host for zstd backups.
  - Python library C(pyrage) on the managed host for encrypted backups.
notes:
  - The P(ops.rollback.backup#role) role's C(restore) entry point adds the C(confirm=RESTORE) gate and runs
    the P(ops.rollback.verify#role) role afterwards.
  - Only one backup or restore of a stack runs at a time (C(<backup_root>/<stack>/.lock)).
seealso:
  - module: ops.rollback.compose_backup
  - module: ops.rollback.backup_info
author:
  - ops.rollback maintainers (@ops-rollback)
"""

EXAMPLES = r"""
- name: Show what restoring the latest backup would replace
  ops.rollback.compose_restore:
    project_dir: /srv/shop
    project_name: shop
    stack: shop
  check_mode: true
  register: shop_restore_plan

- name: Restore an encrypted backup, compose files and .env included
  ops.rollback.compose_restore:
    project_dir: /srv/shop
    project_name: shop
    stack: shop
    backup_id: 20261122T043012Z
    age_identity_file: /root/.config/age/shop.key
    config_files: true
  no_log: true
"""

RETURN = r"""
backup_id:
  description: The backup restored (C(latest) resolved).
  returned: when the backup was found
  type: str
  sample: 20261122T043012Z
would_replace:
  description:
    - What the restore replaces - C(volumes) (each C(key), C(name), C(exists)), C(bind_mounts),
      C(config_files) that differ, C(services_stopped), C(containers_removed), C(services_started),
      C(restore_hooks).
  returned: when the backup passed its checks
  type: dict
safety_backup_id:
  description: ID of the safety backup taken before anything was replaced; restore it to undo. Null in check mode.
  returned: always
  type: str
  sample: 20261122T051500Z
safety_backup_path:
  description: Its directory.
  returned: always
  type: str
timings:
  description: Seconds per step.
  returned: always
  type: dict
"""

import signal

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ops.rollback.plugins.module_utils import _archive as A
from ansible_collections.ops.rollback.plugins.module_utils._backup import Engine, RestoreRun
from ansible_collections.ops.rollback.plugins.module_utils._docker_cli import (
    DockerCli,
    DockerCliError,
    compose_project_argument_spec,
)


def argument_spec():
    spec = compose_project_argument_spec()
    spec.update(
        backup_root=dict(type="path", default="/var/backups/ops-rollback"),
        stack=dict(type="str", required=True),
        backup_id=dict(type="str", default="latest"),
        age_identity_file=dict(type="path"),
        volumes=dict(type="bool", default=True),
        volume_names=dict(type="list", elements="str", default=[]),
        bind_mounts=dict(type="bool", default=False),
        config_files=dict(type="bool", default=False),
        safety_backup=dict(type="bool", default=True),
        helper_image=dict(type="str"),
        volume_source=dict(type="str", choices=["auto", "mountpoint", "api"], default="auto"),
        start_services=dict(type="bool", default=True),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=120),
        restore_hooks=dict(type="list", elements="dict", default=[], options=dict(
            name=dict(type="str", required=True),
            service=dict(type="str", required=True),
            argv=dict(type="list", elements="str", required=True),
            user=dict(type="str"),
        )),
    )
    return spec


def _interrupted(signum, _frame):
    raise A.BackupError("interrupted by signal %d" % signum)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    result = dict(changed=False, safety_backup_id=None, safety_backup_path=None, timings={})
    if p["wait_timeout"] < 1:
        module.fail_json(msg="wait_timeout must be at least 1 second, got %d" % p["wait_timeout"], **result)
    cli = DockerCli(module, p["project_dir"], p["project_name"], p["files"])
    run = RestoreRun(module, cli, Engine(module, cli), dict(p))
    try:
        plan = run.plan()
        result["backup_id"] = plan["entry"]["backup_id"]
        result["would_replace"] = run.describe(plan)
        result["changed"] = True
        if module._diff:
            result["diff"] = run.diff(plan)
        if not module.check_mode:
            signal.signal(signal.SIGTERM, _interrupted)
            result.update(run.run(plan))
    except (A.BackupError, DockerCliError) as exc:
        result["timings"] = run.timings
        module.fail_json(msg="Restore of stack %s from backup %s failed: %s" % (p["stack"], p["backup_id"], exc), **result)
    except OSError as exc:
        result["timings"] = run.timings
        module.fail_json(msg="Restore of stack %s from backup %s failed: %s" % (p["stack"], p["backup_id"], exc), **result)
    result["timings"] = run.timings
    for warning in run.warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
