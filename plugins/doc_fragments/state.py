# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The state directory option shared by the release, lock and history modules.
    DOCUMENTATION = r"""
options:
  state_dir:
    description:
      - Directory on the managed host that holds the release ledger, history, reports and locks,
        one subdirectory per stack.
      - Created with mode 0700; files in it are 0600 (they include copies of C(.env)).
    type: path
    default: /var/lib/ops-rollback
"""
