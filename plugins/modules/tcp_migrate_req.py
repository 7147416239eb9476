#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: tcp_migrate_req
short_description: Let Linux hand a closed listener's waiting connections to Caddy's new one
version_added: 0.1.0
description:
  - Sets the Linux sysctl C(net.ipv4.tcp_migrate_req) (Linux 5.14 and later) where the module
    runs, and keeps it in a C(sysctl.d) file so that it survives a reboot.
  - Caddy opens a new listening socket (C(SO_REUSEPORT)) on every config load and closes the old
    one. Without this setting Linux resets the connections still waiting in the old socket's accept
    queue, so a blue-green switch through Caddy's admin API (or a C(caddy reload)) can drop a
    request. With it they are handed to Caddy's new socket.
  - The setting is per network namespace. It reaches a Caddy that runs on the host. For a Caddy in
    a container, set it in the container instead (Compose C(sysctls)).
  - On a kernel without the setting the module changes nothing and warns.
  - One task, no C(sysctl) binary needed. The role P(ops.rollback.blue_green_switch#role) runs it before
    every switch.
extends_documentation_fragment:
  - ops.rollback.attributes
options:
  enabled:
    description: Whether waiting connections are handed over (C(1)) or reset (C(0), the kernel's default).
    type: bool
    default: true
  persist_file:
    description:
      - The C(sysctl.d) file that sets the value at boot, rewritten when its content differs.
        Empty to set the running value only.
    type: path
    default: /etc/sysctl.d/60-ops-rollback-caddy.conf
attributes:
  check_mode:
    support: full
    details: Reports what would be set and written, and changes nothing.
  diff_mode:
    support: full
    details: The running value and the file's content, before and after.
  idempotent:
    support: full
author:
  - ops.rollback maintainers (@ops-rollback)
"""

EXAMPLES = r"""
- name: Let Caddy's config loads reset no waiting connection
  ops.rollback.tcp_migrate_req:

- name: Set the running value only, with nothing written under /etc
  ops.rollback.tcp_migrate_req:
    persist_file: ""
"""

RETURN = r"""
supported:
  description: Whether this kernel has C(net.ipv4.tcp_migrate_req).
  returned: always
  type: bool
  sample: true
value:
  description: The running value after the module (as it would be, in check mode); null when not supported.
  returned: always
  type: int
  sample: 1
previous_value:
  description: The running value before the module; null when not supported.
  returned: always
  type: int
  sample: 0
persist_file:
  description: The file that keeps the value at boot; empty when none is written.
  returned: always
  type: str
  sample: /etc/sysctl.d/60-ops-rollback-caddy.conf
"""

import os
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ops.rollback.plugins.module_utils import _tcp_migrate_req as tmr
from ansible_collections.ops.rollback.plugins.module_utils._state_files import replace_file


def main():
    module = AnsibleModule(
        argument_spec=dict(enabled=dict(type="bool", default=True), persist_file=dict(type="path", default=tmr.DEFAULT_PERSIST_FILE)),
        supports_check_mode=True,
    )
    enabled, persist_file = module.params["enabled"], module.params["persist_file"] or ""
    try:
        running = tmr.read_value()
        persisted = tmr.read_text(persist_file)
    except (OSError, ValueError) as exc:
        module.fail_json(msg="Reading %s failed: %s" % (tmr.KEY, exc), exception=traceback.format_exc())
    if running is None:
        module.warn("This kernel has no %s (Linux 5.14+): when Caddy loads a new config, a connection waiting in "
                    "its old listener's accept queue may be reset." % tmr.KEY)
        module.exit_json(changed=False, supported=False, value=None, previous_value=None, persist_file="")
    todo = tmr.plan(running, persisted, enabled, persist_file)
    changed = todo["running"] is not None or todo["persist"] is not None
    if changed and not module.check_mode:
        try:
            if todo["persist"] is not None:
                if not os.path.isdir(os.path.dirname(persist_file)):
                    os.makedirs(os.path.dirname(persist_file), 0o755)
                replace_file(persist_file, todo["persist"].encode(), 0o644)
            if todo["running"] is not None:
                tmr.write_value(todo["running"])
        except OSError as exc:
            module.fail_json(msg="Setting %s to %d failed (a read-only /proc/sys, as in an unprivileged container?): %s"
                             % (tmr.KEY, 1 if enabled else 0, exc), exception=traceback.format_exc())
    result = dict(changed=changed, supported=True, previous_value=running,
                  value=running if todo["running"] is None else todo["running"], persist_file=persist_file)
    if module._diff:
        result["diff"] = {
            "before": {"value": running, "persist_file": persisted},
            "after": {"value": result["value"], "persist_file": todo["persist"] if todo["persist"] is not None else persisted},
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
