#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: compose_backup
short_description: Back up a Docker Compose stack, verified, atomically
version_added: 0.1.0
description:
  - Writes one backup of a Compose project to C(<backup_root>/<stack>/<backup_id>/) in a single call -
    copies of the compose files and C(.env) (C(0600)) plus the resolved C(docker compose config);
    C(images.json) with each service's image reference, image ID, repo tags and digests and its
    container's state; one C(tar) archive per named volume (and per bind mount when asked),
    compressed with zstd or gzip and optionally encrypted with age; the output of pre-backup
    hooks (database dumps); and C(manifest.json) with every file's size and sha256, the timings
    and the collection version.
  - Everything is written into C(<backup_id>.partial/), every file is read back and compared
    with the manifest, and only then is the directory renamed to C(<backup_id>). A backup that
    fails is removed; one that is killed stays C(.partial), which M(ops.rollback.backup_info)
    reports as unfinished and the next backup removes.
  - Nothing is pulled. A volume is read from its mount point on the host (a plain C(local)
    volume, as root, with GNU tar) or streamed through the Engine API (C(docker cp), which is
    get_archive) from a helper container that is created and never started, from an image the
    stack already has (O(helper_image) to choose another).
  - The archives stream from the volume through the compressor (and the encryption) into the
    file, with no temporary copy; the sha256 is computed on the way, over the bytes written
    (the ciphertext when encrypted).
  - Retention (O(keep), O(max_age_days)) runs after the new backup is verified and never removes
    the newest good backup.
extends_documentation_fragment:
  - ops.rollback.attributes
  - ops.rollback.compose_project
  - ops.rollback.backup
options:
  backup_id:
    description:
      - ID of the new backup. Default a UTC timestamp such as C(20261122T043012Z), with C(-1),
        C(-2) ... appended when that exists already.
      - Same character rules as O(stack). An ID that exists is refused.
    type: str
  config_files:
    description:
      - Copy the compose files (O(files), or every file with one of Compose's default names in
        O(project_dir)) and C(.env), and store the output of C(docker compose config).
      - The copies are C(0600); with O(age_recipients) they are encrypted too.
    type: bool
    default: true
  volumes:
    description: Archive every named volume the stack's services mount (or those of O(volume_names)).
    type: bool
    default: true
  volume_names:
    description: Only these volumes, by compose key (C(dbdata)) or full name (C(shop_dbdata)).
    type: list
    elements: str
    default: []
  bind_mounts:
    description: Archive the directories bind-mounted into the services too (or those of O(bind_mount_paths)).
    type: bool
    default: false
  bind_mount_paths:
    description: Only these bind-mounted host directories.
    type: list
    elements: path
    default: []
  volume_source:
    description:
      - How a named volume is read.
      - C(mountpoint) - GNU tar on the volume's mount point. Needs root on the Docker host and a
        plain C(local) volume (no driver options); the fastest.
      - C(api) - C(docker cp) (Engine API get_archive) from a created, never started helper container.
      - C(auto) - C(mountpoint) where it can, else C(api).
    type: str
    choices: [auto, mountpoint, api]
    default: auto
  helper_image:
    description:
      - Local image to create helper containers from (for C(api) and bind mounts). They are never
        started, so any image works.
      - Default the image of a service of the stack.
    type: str
  compression:
    description: Compression of the archives and dumps.
    type: str
    choices: [zstd, gzip]
    default: zstd
  compression_level:
    description: Compression level. Default C(3) for zstd (multi-threaded, all cores), C(6) for gzip.
    type: int
  stop_services:
    description:
      - Services to stop while their volumes are archived (those that run), started again
        afterwards in dependency order (C(docker compose start)), also when the backup fails.
      - Hooks run before the services stop.
    type: list
    elements: str
    default: []
  stop_all_services:
    description: Stop every running service of the stack while the volumes are archived.
    type: bool
    default: false
  hooks:
    description:
      - Pre-backup commands, each run with C(docker exec) in the first running container of a
        service; their standard output is stored compressed (and encrypted) as
        C(dumps/<output>.zst). A non-zero exit fails the backup.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Unique name of the hook (same character rules as O(stack)).
        type: str
        required: true
      service:
        description: Compose service to run it in; it must be running.
        type: str
        required: true
      argv:
        description: The command as an argument list, such as C([pg_dump, -U, postgres, -d, app]).
        type: list
        elements: str
        required: true
      user:
        description: User to run it as (C(docker exec --user)).
        type: str
      output:
        description: File name of the stored output, without the compression suffix. Default C(<name>.out).
        type: str
  keep:
    description: Keep at most this many backups of the stack (the new one included). At least 1.
    type: int
  max_age_days:
    description: Remove backups older than this many days. C(0) or unset keeps them regardless of age.
    type: float
  age_recipients:
    description:
      - age X25519 public keys (C(age1...)). When set, every archive, dump and config copy is
        encrypted to all of them while it streams, so the host that writes the backup can't read it.
      - The manifest records the recipients; a restore needs a matching identity.
    type: list
    elements: str
    default: []
  offhost_path:
    description:
      - A second root, such as a mounted network share. The verified backup is copied to
        C(<offhost_path>/<stack>/<backup_id>/) through C(.partial), checked with the same sha256
        sums, and the same retention is applied there.
    type: path
attributes:
  check_mode:
    support: full
    details: Resolves the stack and reports what it would back up (RV(plan)); writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every run writes a new backup.
requirements:
  - Python library C(zstandard) on the managed host for O(compression=zstd).
  - Python library C(pyrage) on the managed host when O(age_recipients) is set.
  - GNU tar on the managed host for O(volume_source=mountpoint).
notes:
  - The file modes (C(0700) directories, C(0600) files) don't depend on the umask.
  - Only one backup or restore of a stack runs at a time (C(<backup_root>/<stack>/.lock)).
  - The module never returns the content of C(.env); still, give the task C(no_log=true).
seealso:
  - module: ops.rollback.compose_restore
  - module: ops.rollback.backup_info
  - name: The ops.rollback.backup role
    description: Preflight, this module, the off-host copy and a summary.
    link: https://example.invalid/ops/rollback/docs/backup.md
author:
  - ops.rollback maintainers (@ops-rollback)
"""

EXAMPLES = r"""
- name: Back up the shop stack with a database dump, keeping 7 backups
  ops.rollback.compose_backup:
    project_dir: /srv/shop
    project_name: shop
    stack: shop
    hooks:
      - name: db
        service: db
        user: postgres
        argv: [pg_dump, --format=custom, -d, shop]
        output: shop.dump
    keep: 7
  register: shop_backup
  no_log: true

- name: Back up with the services stopped, encrypted for two operators
  ops.rollback.compose_backup:
    project_dir: /srv/shop
    project_name: shop
    stack: shop
    stop_all_services: true
    age_recipients:
      - age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
    offhost_path: /mnt/backup-share
  no_log: true
"""

RETURN = r"""
backup_id:
  description: ID of the new backup (null in check mode).
  returned: always
  type: str
  sample: 20261122T043012Z
backup_path:
  description: Directory of the new backup (null in check mode).
  returned: always
  type: str
  sample: /var/backups/ops-rollback/shop/20261122T043012Z
manifest:
  description:
    - The manifest as written to C(manifest.json) (empty in check mode) - C(backup_id), C(stack), C(created),
      C(finished), C(host), C(collection), C(compression), C(encryption), C(services), C(volumes),
      C(bind_mounts), C(hooks), C(config_files), C(files) (each C(path), C(size), C(sha256), C(kind),
      C(encrypted)) and C(timings).
  returned: always
  type: dict
plan:
  description: What the backup takes (volumes with their read method, bind mounts, hooks, config files, services to stop).
  returned: always
  type: dict
  sample: {volumes: [{key: dbdata, name: shop_dbdata, method: mountpoint}], bind_mounts: [], hooks: [db],
           config_files: [compose.yml, .env], stop_services: [], helper_image: null}
pruned:
  description: Backups (and unfinished C(.partial) directories) removed by retention.
  returned: always
  type: list
  elements: str
  sample: [20261115T043012Z]
offhost:
  description: The off-host copy, when O(offhost_path) is set - C(path) and C(pruned).
  returned: when O(offhost_path) is set and not in check mode
  type: dict
timings:
  description:
    - Seconds per step, and per volume C(seconds) (the streaming, tar to file), C(fsync_s), C(raw_bytes),
      C(stored_bytes) and C(mb_per_s).
    - Besides those in the manifest, C(verify_s) (reading every file back) and the final C(total_s).
  returned: always
  type: dict
"""

import signal
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ops.rollback.plugins.module_utils import _archive as A
from ansible_collections.ops.rollback.plugins.module_utils._backup import BackupRun, Engine, copy_backup
from ansible_collections.ops.rollback.plugins.module_utils._docker_cli import (
    DockerCli,
    DockerCliError,
    compose_project_argument_spec,
    fail_unless_project_dir,
)


def argument_spec():
    spec = compose_project_argument_spec()
    spec.update(
        backup_root=dict(type="path", default="/var/backups/ops-rollback"),
        stack=dict(type="str", required=True),
        backup_id=dict(type="str"),
        config_files=dict(type="bool", default=True),
        volumes=dict(type="bool", default=True),
        volume_names=dict(type="list", elements="str", default=[]),
        bind_mounts=dict(type="bool", default=False),
        bind_mount_paths=dict(type="list", elements="path", default=[]),
        volume_source=dict(type="str", choices=["auto", "mountpoint", "api"], default="auto"),
        helper_image=dict(type="str"),
        compression=dict(type="str", choices=["zstd", "gzip"], default="zstd"),
        compression_level=dict(type="int"),
        stop_services=dict(type="list", elements="str", default=[]),
        stop_all_services=dict(type="bool", default=False),
        hooks=dict(type="list", elements="dict", default=[], options=dict(
            name=dict(type="str", required=True),
            service=dict(type="str", required=True),
            argv=dict(type="list", elements="str", required=True),
            user=dict(type="str"),
            output=dict(type="str"),
        )),
        keep=dict(type="int"),
        max_age_days=dict(type="float"),
        age_recipients=dict(type="list", elements="str", default=[]),
        offhost_path=dict(type="path"),
    )
    return spec


def _interrupted(signum, _frame):
    raise A.BackupError("interrupted by signal %d" % signum)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    result = dict(changed=False, backup_id=None, backup_path=None, manifest={}, plan={}, pruned=[], timings={})
    if p["keep"] is not None and p["keep"] < 1:
        module.fail_json(msg="keep must be at least 1 (the new backup), got %d" % p["keep"], **result)
    if p["max_age_days"] is not None and p["max_age_days"] < 0:
        module.fail_json(msg="max_age_days must not be negative, got %s" % p["max_age_days"], **result)
    fail_unless_project_dir(module, **result)
    opts = dict(p, max_age_days=p["max_age_days"] or None)
    cli = DockerCli(module, p["project_dir"], p["project_name"], p["files"])
    run = BackupRun(module, cli, Engine(module, cli), opts)
    try:
        plan = run.plan()
        result["plan"] = run.describe(plan)
        result["changed"] = True
        if module.check_mode:
            for warning in run.warnings:
                module.warn(warning)
            module.exit_json(**result)
        signal.signal(signal.SIGTERM, _interrupted)
        manifest, path, pruned = run.run(plan)
        result.update(backup_id=manifest["backup_id"], backup_path=path, manifest=manifest, pruned=pruned,
                      timings=run.timings)
    except (A.BackupError, DockerCliError) as exc:
        module.fail_json(msg="Backup of stack %s (project %s in %s) failed: %s" % (p["stack"], p["project_name"], p["project_dir"], exc),
                         **result)
    except OSError as exc:
        module.fail_json(msg="Backup of stack %s to %s failed: %s" % (p["stack"], p["backup_root"], exc),
                         exception=traceback.format_exc(), **result)
    if p["offhost_path"]:
        try:
            copy, copy_pruned = copy_backup(path, manifest, p["offhost_path"], p["stack"], p["keep"], opts["max_age_days"])
        except (A.BackupError, OSError) as exc:
            module.fail_json(msg="Backup %s of stack %s was written and verified in %s, but copying it to %s failed: %s"
                             % (manifest["backup_id"], p["stack"], path, p["offhost_path"], exc), **result)
        result["offhost"] = dict(path=copy, pruned=copy_pruned)
    for warning in run.warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
