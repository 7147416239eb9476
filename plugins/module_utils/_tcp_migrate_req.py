# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""net.ipv4.tcp_migrate_req: what keeps a Caddy config load from resetting connections.

Caddy opens a new listening socket (SO_REUSEPORT) on every config load and closes the old
one. Linux resets the connections still waiting in the old socket's accept queue, unless this
sysctl (Linux 5.14+) hands them to another socket of the same group: Caddy's new one. It is per
network namespace, so it is read and written where the module runs.
"""

from __future__ import annotations

import os

PROC_PATH = "/proc/sys/net/ipv4/tcp_migrate_req"
KEY = "net.ipv4.tcp_migrate_req"
DEFAULT_PERSIST_FILE = "/etc/sysctl.d/60-ops-rollback-caddy.conf"


def persist_text(enabled):
    """The content of the sysctl.d file that sets the value at boot."""
    return (
        "# Written by ops.rollback (blue_green_switch): Caddy's config loads hand waiting connections\n"
        "# to its new listener instead of resetting them (docs/blue_green.md).\n"
        "%s = %d\n" % (KEY, 1 if enabled else 0)
    )


def read_value(path=None):
    """The running value as an int, or None when the kernel has no such setting."""
    path = path or PROC_PATH
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return int(handle.read().strip())


def write_value(value, path=None):
    with open(path or PROC_PATH, "w") as handle:
        handle.write("%d\n" % value)


def read_text(path):
    """A file's text, or None when it does not exist."""
    if not path or not os.path.exists(path):
        return None
    with open(path) as handle:
        return handle.read()


def plan(running, persisted, enabled, persist_file):
    """What to change: {'running': new value or None, 'persist': new file text or None}.
    `running` is None on a kernel without the setting: nothing can be set then, and no file is
    written that would fail at boot."""
    want = 1 if enabled else 0
    if running is None:
        return {"running": None, "persist": None}
    text = persist_text(enabled)
    return {
        "running": want if running != want else None,
        "persist": text if persist_file and persisted != text else None,
    }
