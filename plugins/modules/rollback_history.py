#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rollback_history
short_description: List the last rollbacks of a Compose stack, or of every stack on the host
version_added: 0.1.0
description:
  - Reads O(state_dir)/<stack>/history.jsonl (written by M(ops.rollback.rollback_record)) of
    O(project_name), or of every stack under O(state_dir) when O(project_name) is not given,
    and returns the newest O(limit) rollbacks, newest first, with the paths of their reports.
  - Also renders them as a plain-text table (RV(table)) - when, stack, who, from and to
    releases, strategy, duration, status - for ops.rollback.history to print.
  - With O(netlify_history_file), the Netlify rollbacks recorded there by ops.rollback.netlify_rollback
    are listed too, the site as C(netlify:<site>) in the stack column and the deploys as releases.
  - Read-only. A torn last line (a run killed while writing) is skipped.
extends_documentation_fragment:
  - ops.rollback.attributes
  - ops.rollback.state
options:
  project_name:
    description: The stack (Compose project name); all stacks under O(state_dir) when not given.
    type: str
  limit:
    description: How many rollbacks to list at most (the newest).
    type: int
    default: 10
  netlify_history_file:
    description: A Netlify rollback history (JSONL) to list as well.
    type: path
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
- name: The last 5 rollbacks of the shop stack
  ops.rollback.rollback_history:
    project_name: shop
    limit: 5
  register: shop_history

- name: Print them as a table
  ansible.builtin.debug:
    msg: "{{ shop_history.table }}"
"""

RETURN = r"""
entries:
  description:
    - The rollbacks, newest first; the fields of a history line (see M(ops.rollback.rollback_record)),
      plus C(source) (V(stack) or V(netlify)) and C(report) (C(markdown) and C(json) paths, or
      null when the report is missing).
  returned: always
  type: list
  elements: dict
  sample:
    - id: 20261122T043000Z-1234
      stack: shop
      from: 3f9c2a1b7d4e
      from_version: v1.5.0
      to: 0b1c2d3e4f50
      to_version: v1.4.2
      strategy: recreate
      who: alice
      started_at: "2026-11-22T04:30:00Z"
      duration_s: 31.0
      status: succeeded
      source: stack
      report:
        markdown: /var/lib/ops-rollback/shop/reports/20261122T043000Z-1234.md
        json: /var/lib/ops-rollback/shop/reports/20261122T043000Z-1234.json
text:
  description:
    - What ops.rollback.history prints - the table, then the path of each rollback's Markdown report -
      or a sentence saying that no rollback was recorded.
  returned: always
  type: str
table:
  description: The entries as lines of a table, header first (only the header when there are none).
  returned: always
  type: list
  elements: str
stacks:
  description: The stacks whose history was read.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ops.rollback.plugins.module_utils._history import collect, history_text, render_table
from ansible_collections.ops.rollback.plugins.module_utils._names import NameError_


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state_dir=dict(type="path", default="/var/lib/ops-rollback"),
            project_name=dict(type="str"),
            limit=dict(type="int", default=10),
            netlify_history_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["limit"] < 1:
        module.fail_json(msg="limit=%d: give 1 or more" % p["limit"])
    where = "stack %s" % p["project_name"] if p["project_name"] else "the stacks under %s" % p["state_dir"]
    try:
        stacks, entries = collect(p["state_dir"], p["project_name"], p["limit"], p["netlify_history_file"])
    except NameError_ as exc:
        module.fail_json(msg="Reading the rollback history of %s: %s" % (where, exc))
    except OSError as exc:
        module.fail_json(msg="Reading the rollback history of %s failed: %s" % (where, exc))
    if p["netlify_history_file"]:
        where += " or in %s" % p["netlify_history_file"]
    module.exit_json(changed=False, entries=entries, table=render_table(entries), text=history_text(entries, where),
                     stacks=stacks)


if __name__ == "__main__":
    main()
