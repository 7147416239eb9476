#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_info
short_description: List the backups of a stack with their manifest summary and validity
version_added: 0.1.0
description:
  - Lists the backups that M(ops.rollback.compose_backup) wrote for one stack under
    O(backup_root), oldest first, each with the summary of its manifest and whether it is valid.
  - A backup is valid when its C(manifest.json) is well formed, names the right stack and ID, and
    every file it lists is there with the right size - and, with O(verify_checksums=true), the
    right sha256 (every file is read).
  - Unfinished backups (C(<backup_id>.partial), from a backup that was killed) are listed as
    invalid with C(partial=true).
  - Works on any directory with that layout, such as an off-host copy.
extends_documentation_fragment:
  - ops.rollback.attributes
  - ops.rollback.backup
options:
  backup_id:
    description: Only this backup (or C(latest), the newest valid one that is not a safety backup).
    type: str
  verify_checksums:
    description: Read every file and compare its sha256 with the manifest (slower; sizes only otherwise).
    type: bool
    default: false
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
- name: List the backups of the shop stack, checksums included
  ops.rollback.backup_info:
    stack: shop
    verify_checksums: true
  register: shop_backups

- name: Fail when the newest backup is not valid
  ansible.builtin.assert:
    that: shop_backups.latest is not none
    fail_msg: "No valid backup of shop: {{ shop_backups.backups | map(attribute='problems') | list }}"
"""

RETURN = r"""
backups:
  description: The backups, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    backup_id:
      description: The ID (the directory name without C(.partial)).
      type: str
      sample: 20261122T043012Z
    path:
      description: The backup's directory.
      type: str
    partial:
      description: An unfinished backup (C(.partial) directory).
      type: bool
    valid:
      description: Manifest well formed and every file present with its size (and sha256 when checked).
      type: bool
    problems:
      description: Why it is not valid, one entry per file or manifest problem.
      type: list
      elements: str
      sample: ["volumes/dbdata.tar.zst: sha256 6f1c..., the manifest says 9ab2..."]
    kind:
      description: C(backup), or C(safety) for one a restore took first.
      type: str
    created:
      description: When it started (UTC).
      type: str
      sample: "2026-11-22T04:30:12Z"
    finished:
      description: When it finished (UTC).
      type: str
    host:
      description: The host that wrote it.
      type: str
    project_name:
      description: The Compose project it was taken from.
      type: str
    collection_version:
      description: Version of ops.rollback that wrote it.
      type: str
    compression:
      description: C(zstd) or C(gzip).
      type: str
    encrypted:
      description: Whether it is encrypted with age.
      type: bool
    recipients:
      description: The age public keys it is encrypted to.
      type: list
      elements: str
    volumes:
      description: Compose keys of the volumes it holds.
      type: list
      elements: str
    bind_mounts:
      description: Host directories it holds.
      type: list
      elements: str
    dumps:
      description: Names of the hooks whose output it holds.
      type: list
      elements: str
    restore_of:
      description: For a safety backup, the backup whose restore took it.
      type: str
    file_count:
      description: Files listed in the manifest.
      type: int
    size:
      description: Their total size in bytes.
      type: int
latest:
  description: ID of the newest valid backup that is not a safety backup, or null.
  returned: always
  type: str
  sample: 20261122T043012Z
stack_dir:
  description: The stack's directory under O(backup_root).
  returned: always
  type: str
  sample: /var/backups/ops-rollback/shop
count:
  description: Number of backups listed.
  returned: always
  type: int
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ops.rollback.plugins.module_utils import _archive as A


def main():
    module = AnsibleModule(
        argument_spec=dict(
            backup_root=dict(type="path", default="/var/backups/ops-rollback"),
            stack=dict(type="str", required=True),
            backup_id=dict(type="str"),
            verify_checksums=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        A.check_name(p["stack"], "stack")
        if p["backup_id"] and p["backup_id"] != "latest":
            A.check_name(p["backup_id"], "backup_id")
        entries = A.scan_stack(A.stack_dir(p["backup_root"], p["stack"]), p["stack"], verify_checksums=p["verify_checksums"])
    except (A.BackupError, OSError) as exc:
        module.fail_json(msg="Listing the backups of stack %s under %s failed: %s" % (p["stack"], p["backup_root"], exc))
    latest = A.latest_good(entries)
    if p["backup_id"] == "latest":
        entries = [latest] if latest else []
    elif p["backup_id"]:
        entries = [e for e in entries if e["backup_id"] == p["backup_id"]]
    backups = [A.summary(e) for e in entries]
    module.exit_json(changed=False, backups=backups, count=len(backups),
                     latest=latest["backup_id"] if latest else None,
                     stack_dir=os.path.join(p["backup_root"], p["stack"]))


if __name__ == "__main__":
    main()
