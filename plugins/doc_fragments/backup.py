# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Where backups live: options shared by compose_backup, compose_restore and backup_info.
    DOCUMENTATION = r"""
options:
  backup_root:
    description:
      - Directory that holds the backups, one directory per stack below it
        (C(<backup_root>/<stack>/<backup_id>/)).
      - Created at mode C(0700) when a backup is written; every backup directory is C(0700)
        and every file in it C(0600).
    type: path
    default: /var/backups/ops-rollback
  stack:
    description:
      - Name of the stack's directory under O(backup_root).
      - Letters, digits, C(.), C(_) and C(-), starting with a letter or digit, no C(..);
        anything else (a path traversal) is refused before any change.
    type: str
    required: true
"""
