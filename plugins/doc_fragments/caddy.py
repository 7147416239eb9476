# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Options of plugins.module_utils._caddy.caddy_admin_argument_spec().
    DOCUMENTATION = r"""
options:
  admin_url:
    description:
      - Where Caddy's admin API listens, as seen from the managed host.
      - V(http://host:port) for a TCP endpoint. Use the address of Caddy's C(admin) option
        (or one of its C(origins)), Caddy answers HTTP 403 to any other C(Host).
      - V(unix:///path/to/admin.sock) for a unix socket endpoint.
    type: str
    default: http://localhost:2019
  timeout:
    description:
      - Seconds to wait for each request to the admin API.
      - A config change makes Caddy reload, so a write returns only after the new config runs.
    type: float
    default: 10
  retries:
    description:
      - How many times to read the config again and retry when Caddy refuses a write with
        HTTP 412 because the config changed since it was read (another client wrote to it).
      - After that many conflicts the task fails and nothing of this task has been written.
    type: int
    default: 3
notes:
  - Writes are conditional (C(If-Match) with the ETag of the config that was read), so a
    concurrent change is never overwritten. Caddy 2.8 and later send the ETag as a header;
    Caddy 2.5.2 to 2.7 (Debian 12's 2.6.2) send it as an HTTP trailer that Python cannot read,
    so it is computed from the response body exactly as Caddy computes it. Caddy before 2.5.2
    ignores C(If-Match).
"""
