#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: caddy_upstream
short_description: Set the upstreams of one reverse_proxy handler in a running Caddy
version_added: 0.1.0
description:
  - Finds one C(reverse_proxy) handler in the live config of a running Caddy, through its admin
    API, and makes its static upstreams exactly the given set of dial addresses.
  - The search descends into C(subroute) handlers, so it finds handlers of sites written in a
    Caddyfile (which wraps every site with a host, and every C(handle) block, in a subroute).
  - Only the handler's C(upstreams) key is written; the rest of the config stays as it was.
  - The write is a conditional read-modify-write (C(If-Match)); when another client changed the
    config in between, Caddy refuses it and the module reads again, up to O(retries) times.
  - Caddy applies the change with a graceful reload. Listeners stay open and requests in flight
    finish on the old upstreams; idle keep-alive client connections are closed, so a client
    that reuses one at that instant must retry (browsers and most HTTP libraries do).
author:
  - ops.rollback maintainers (@ops-rollback)
extends_documentation_fragment:
  - ops.rollback.caddy
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target.
    support: full
    details:
      - Reads the config and reports what would change; sends no write.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
    details:
      - Shows the handler's upstream dial addresses before and after.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second run indicates no change.
    support: full
    details:
      - When the handler already has exactly this set of upstreams (in any order), nothing is sent
        to Caddy and the task is not changed.
options:
  upstreams:
    description:
      - The dial addresses (V(host:port), IPv6 in brackets) the handler must proxy to after
        the task. This is the exact set; order is kept in what is written but ignored when
        comparing.
      - An upstream that stays keeps its other settings (for example C(max_requests)).
    type: list
    elements: str
    required: true
  handler_id:
    description:
      - Select the handler by its C(@id).
      - Exactly one of O(handler_id), O(host) and O(config_path) is required.
    type: str
  host:
    description:
      - Select the one C(reverse_proxy) handler reached for this site host name (an exact
        name in a C(host) matcher, case-insensitive).
      - It is an error when the site has several C(reverse_proxy) handlers (for example one per
        C(handle) block); the message lists them so one can be chosen with O(handler_id) or
        O(config_path).
    type: str
  server:
    description:
      - With O(host), only search this HTTP server (C(srv0), C(srv1), ... in a config adapted
        from a Caddyfile), for a host that several servers serve.
    type: str
  config_path:
    description:
      - Select the handler by its path in Caddy's config, for example
        V(/config/apps/http/servers/srv0/routes/0/handle/0/routes/0/handle/0).
    type: str
  verify:
    description:
      - After a write, read the config again and C(/reverse_proxy/upstreams) and fail unless
        the handler has exactly the new upstreams and Caddy runs every one of them.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Send the site to the green stack
  ops.rollback.caddy_upstream:
    admin_url: http://127.0.0.1:2019
    host: shop.example.com
    upstreams:
      - 127.0.0.1:8082

- name: Set the upstreams of a handler tagged with an @id, through the admin unix socket
  ops.rollback.caddy_upstream:
    admin_url: unix:///run/caddy/admin.sock
    handler_id: shop_api
    upstreams:
      - 10.0.0.11:9000
      - 10.0.0.12:9000

- name: Show what a switch back to blue would change
  ops.rollback.caddy_upstream:
    host: shop.example.com
    server: srv0
    upstreams:
      - 127.0.0.1:8081
  check_mode: true
  diff: true
  register: switch_preview
"""

RETURN = r"""
previous_upstreams:
  description: Dial addresses of the handler's upstreams before the task, in Caddy's order.
  returned: success
  type: list
  elements: str
  sample: ["127.0.0.1:8081"]
upstreams:
  description: Dial addresses of the handler's upstreams after the task (in check mode, what they would be).
  returned: success
  type: list
  elements: str
  sample: ["127.0.0.1:8082"]
config_path:
  description: Path of the selected handler in Caddy's config.
  returned: success
  type: str
  sample: /config/apps/http/servers/srv0/routes/0/handle/0/routes/0/handle/0
handler_id:
  description: The C(@id) of the selected handler, V(null) when it has none.
  returned: success
  type: str
  sample: shop_proxy
conflicts:
  description: How many writes Caddy refused with HTTP 412 because the config changed meanwhile (each was retried).
  returned: success
  type: int
  sample: 0
diff:
  description: The handler's upstreams before and after.
  returned: changed and diff mode
  type: dict
  contains:
    before:
      description: Upstreams before.
      type: dict
    after:
      description: Upstreams after.
      type: dict
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ops.rollback.plugins.module_utils._caddy import (
    CaddyAdmin,
    CaddyConflictError,
    CaddyError,
    SelectionError,
    build_upstreams,
    caddy_admin_argument_spec,
    same_upstream_set,
    select_handler,
    upstream_dials,
    validate_upstreams,
)

SELECTORS = ("handler_id", "host", "config_path")


class CaddyUpstream:
    """Read, select, compare, write (conditionally), verify."""

    def __init__(self, module):
        self.module = module
        params = module.params
        self.selector = dict((name, params[name]) for name in SELECTORS + ("server",))
        self.retries = params["retries"]
        self.client = None
        self.desired = None
        self.result = dict(changed=False, conflicts=0)

    def check_options(self):
        params = self.module.params
        if params["timeout"] <= 0 or params["retries"] < 0:
            raise CaddyError("Invalid options: timeout must be > 0 and retries >= 0, got timeout=%s retries=%s"
                             % (params["timeout"], params["retries"]))
        try:
            self.desired = validate_upstreams(params["upstreams"])
        except ValueError as exc:
            raise CaddyError("Invalid upstreams: %s" % exc)
        self.client = CaddyAdmin(params["admin_url"], params["timeout"])

    def describe_selector(self):
        return ", ".join("%s=%s" % (k, v) for k, v in self.selector.items() if v not in (None, ""))

    def select(self, config):
        try:
            return select_handler(config, **self.selector)
        except SelectionError as exc:
            raise SelectionError("Selecting the reverse_proxy handler (%s) in the config of %s failed: %s"
                                 % (self.describe_selector(), self.client.admin_url, exc))

    def write(self, target, etag):
        """Write only ``<handler>/upstreams``.

        PATCH on that key replaces just its value, so every other byte of the config (the
        handler's other settings, sibling routes, other sites) is left as Caddy holds it;
        writing the whole handler back would round-trip it through Python's JSON and could
        alter numbers or keys Caddy added. POST is not used: on an array it appends. PUT is
        used only to create the key when the handler has none (PATCH answers 404 then).
        If-Match carries the ETag of the whole config that was searched: the path is made of
        array indexes, so any concurrent change (a route inserted above ours) must be caught.
        """
        value = build_upstreams(target.handler.get("upstreams"), self.desired)
        method = "PATCH" if "upstreams" in target.handler else "PUT"
        self.client.write_json(method, target.path + "/upstreams", value, etag,
                               "Setting upstreams of handler at %s to %s" % (target.path, ", ".join(self.desired)))

    def verify(self):
        config = self.client.get_config()[0]
        target = self.select(config)
        now = upstream_dials(target.handler)
        if now != self.desired:
            raise CaddyError("Verifying upstreams of handler at %s failed: Caddy's config has %s, expected %s"
                             % (target.path, ", ".join(str(d) for d in now), ", ".join(self.desired)))
        running = set(str(u.get("address")) for u in self.client.upstream_status() if isinstance(u, dict))
        missing = [d for d in self.desired if d not in running]
        if missing:
            raise CaddyError("Verifying upstreams of handler at %s failed: GET /reverse_proxy/upstreams "
                             "does not list %s" % (target.path, ", ".join(missing)))

    def run(self):
        self.check_options()
        while True:
            config, _body, etag, etag_source = self.client.get_config()
            target = self.select(config)
            previous = upstream_dials(target.handler)
            changed = not same_upstream_set(previous, self.desired)
            handler_id = None if target.handler_id is None else str(target.handler_id)
            self.result.update(config_path=target.path, handler_id=handler_id,
                               previous_upstreams=previous, upstreams=self.desired if changed else previous)
            if not changed or self.module.check_mode:
                break
            try:
                self.write(target, etag)
                break
            except CaddyConflictError as exc:
                self.result["conflicts"] += 1
                if self.result["conflicts"] > self.retries:
                    hint = ""
                    if etag_source == "computed":
                        hint = (" The ETag was computed from the body (Caddy sent no Etag header), as Caddy"
                                " 2.5.2-2.7 compute it; a Caddy that hashes otherwise refuses every write.")
                    raise CaddyError("%s; gave up after %d conflicts (retries=%d): another client keeps "
                                     "changing Caddy's config.%s" % (exc, self.result["conflicts"], self.retries, hint))
        self.result["changed"] = changed
        if changed and not self.module.check_mode and self.module.params["verify"]:
            self.verify()
        if changed and self.module._diff:
            self.result["diff"] = dict(before_header=target.path, after_header=target.path,
                                       before=dict(upstreams=previous), after=dict(upstreams=self.desired))
        return self.result


def main():
    argument_spec = caddy_admin_argument_spec()
    argument_spec.update(
        upstreams=dict(type="list", elements="str", required=True),
        handler_id=dict(type="str"),
        host=dict(type="str"),
        server=dict(type="str"),
        config_path=dict(type="str"),
        verify=dict(type="bool", default=True),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[SELECTORS],
        required_one_of=[SELECTORS],
        required_by=dict(server="host"),
        supports_check_mode=True,
    )
    manager = CaddyUpstream(module)
    try:
        result = manager.run()
    except CaddyError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc(), **manager.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
