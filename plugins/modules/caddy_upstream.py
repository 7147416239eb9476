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
  - A change through the admin API is lost when Caddy loads its Caddyfile again (C(caddy reload),
    a restart). With O(snippet), the module also rewrites a file that the Caddyfile's
    C(reverse_proxy) block imports, so the switch survives that; with O(caddyfile) it first
    checks with C(caddy adapt) that the Caddyfile really takes the new upstreams from it.
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
      - Shows the handler's upstream dial addresses before and after, and with O(snippet) the
        snippet's text before and after.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second run indicates no change.
    support: full
    details:
      - When the handler already has exactly this set of upstreams (in any order), nothing is sent
        to Caddy and the task is not changed.
      - With O(snippet), the task is not changed only when the snippet also holds exactly the
        content the module writes. A stale snippet alone is rewritten (changed, nothing sent to
        Caddy).
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
  snippet:
    description:
      - A file that the C(reverse_proxy) block of the selected handler imports in the Caddyfile
        (C(import /etc/caddy/upstreams/web.caddy) inside C(reverse_proxy { })), so that the
        switch survives C(caddy reload) and restarts.
      - "The module makes it hold exactly two lines: the comment
        C(# Managed by ops.rollback.caddy_upstream: the upstreams of <handler>. Edits are overwritten.)
        and C(to <dial> <dial> ...) with O(upstreams) in the given order."
      - It is written only when its content differs, atomically (a temporary file in the same
        directory renamed over it), keeping the mode (and, as root, the owner) of the existing
        file; a new file gets mode C(0644). A symlink is followed; its target is rewritten.
      - Its directory must exist.
      - The snippet is written before the admin API is changed. When the check of O(caddyfile)
        fails, or the change through the admin API fails, the snippet gets back its previous
        content (or is removed when it did not exist) and the task fails. A failing O(verify)
        after a write that Caddy accepted leaves the new snippet in place.
    type: path
    version_added: 0.1.0
  caddyfile:
    description:
      - The Caddyfile that imports O(snippet). Needs O(snippet).
      - Whenever the task writes (the snippet or the admin API), after writing the snippet and
        before any request that writes to the admin API, the module runs
        C(<caddy_binary> adapt --config <caddyfile> --adapter caddyfile) and searches the
        adapted config for the handler, with the same search as in the live config. It must
        exist there and proxy to exactly O(upstreams) (no other C(to)). Otherwise the snippet gets
        back its previous content, nothing is sent to Caddy, and the task fails with Caddy's
        error output.
      - With O(host) or O(config_path) the handler is searched in the adapted config by that
        selector. A Caddyfile cannot write C(@id), so with O(handler_id) it is the handler at the
        path where O(handler_id) found it in the live config (the same handler when the live
        config is this Caddyfile with C(@id) tags added).
      - Not run in check mode, and not run when nothing changes.
    type: path
    version_added: 0.1.0
  caddy_binary:
    description:
      - The C(caddy) program that adapts O(caddyfile), an absolute path or a name searched in
        E(PATH). Only used with O(caddyfile).
    type: str
    default: caddy
    version_added: 0.1.0
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

- name: Send the site to the green stack, and keep it there across caddy reload and restarts
  ops.rollback.caddy_upstream:
    admin_url: http://127.0.0.1:2019
    host: shop.example.com
    upstreams:
      - 127.0.0.1:8082
    # the Caddyfile has: shop.example.com { reverse_proxy { import /etc/caddy/upstreams/shop.caddy } }
    snippet: /etc/caddy/upstreams/shop.caddy
    caddyfile: /etc/caddy/Caddyfile
    caddy_binary: /usr/bin/caddy
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
snippet_changed:
  description:
    - Whether O(snippet) was rewritten (in check mode, would be). V(false) without O(snippet),
      and when the snippet was restored after a failure.
  returned: always
  type: bool
  sample: true
diff:
  description:
    - Without O(snippet), the handler's upstreams before and after (one dict).
    - With O(snippet), a list of such dicts, one per part that changed; the snippet's has its
      text before and after, and its path as header.
  returned: changed and diff mode
  type: raw
  contains:
    before:
      description: Upstreams before (a dict), or the snippet's text before (empty when it did not exist).
      type: raw
    after:
      description: Upstreams after (a dict), or the snippet's text after.
      type: raw
"""

import os
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
from ansible_collections.ops.rollback.plugins.module_utils._caddy_snippet import (
    Snippet,
    describe_selector,
)

SELECTORS = ("handler_id", "host", "config_path")


class CaddyUpstream:
    """Read, select, compare, persist to the snippet (and check the Caddyfile), write
    (conditionally), verify."""

    def __init__(self, module):
        self.module = module
        params = module.params
        self.selector = dict((name, params[name]) for name in SELECTORS + ("server",))
        self.retries = params["retries"]
        self.client = None
        self.desired = None
        self.snippet = None
        self.result = dict(changed=False, conflicts=0, snippet_changed=False)

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
        if params["snippet"]:
            caddyfile = params["caddyfile"]
            binary = None
            if caddyfile:
                if not os.path.isfile(caddyfile):
                    raise CaddyError("Invalid options: caddyfile %s does not exist or is not a file" % caddyfile)
                binary = self.caddy_binary(params["caddy_binary"])
            self.snippet = Snippet(params["snippet"], caddyfile, binary, self.module.run_command)

    def caddy_binary(self, name):
        if os.path.isabs(name):
            path = name
        else:
            path = self.module.get_bin_path(name)
        if not path or not os.access(path, os.X_OK):
            raise CaddyError("Invalid options: caddy_binary %s is not an executable program (it adapts "
                             "caddyfile %s)" % (name, self.module.params["caddyfile"]))
        return path

    def describe_selector(self):
        return ", ".join("%s=%s" % (k, v) for k, v in self.selector.items() if v not in (None, ""))

    def select(self, config):
        try:
            return select_handler(config, **self.selector)
        except SelectionError as exc:
            raise SelectionError("Selecting the reverse_proxy handler (%s) in the config of %s failed: %s"
                                 % (self.describe_selector(), self.client.admin_url, exc))

    def inspect(self, config):
        """Select the handler in a config just read; record it; whether it must change."""
        target = self.select(config)
        previous = upstream_dials(target.handler)
        changed = not same_upstream_set(previous, self.desired)
        handler_id = None if target.handler_id is None else str(target.handler_id)
        self.result.update(config_path=target.path, handler_id=handler_id,
                           previous_upstreams=previous, upstreams=self.desired if changed else previous)
        return target, previous, changed

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

    def write_until_accepted(self, target, changed, etag, etag_source):
        """Write, reading again after each conflict; the last (target, previous, changed)."""
        previous = self.result["previous_upstreams"]
        while changed:
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
            config, _body, etag, etag_source = self.client.get_config()
            target, previous, changed = self.inspect(config)
        return target, previous, changed

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
        config, _body, etag, etag_source = self.client.get_config()
        target, previous, changed = self.inspect(config)
        snippet_changed = False
        if self.snippet:
            snippet_changed = self.snippet.plan(self.desired, describe_selector(**self.selector))
        if (changed or snippet_changed) and not self.module.check_mode:
            if self.snippet:
                try:
                    self.snippet.apply(self.selector, target.path, self.desired)
                finally:
                    self.result["changed"] = self.result["snippet_changed"] = self.snippet.written
            try:
                target, previous, changed = self.write_until_accepted(target, changed, etag, etag_source)
            except CaddyError as exc:
                if not (self.snippet and self.snippet.written):
                    raise
                undone = self.snippet.rollback()
                self.result["changed"] = self.result["snippet_changed"] = self.snippet.written
                raise CaddyError("%s; %s" % (exc, undone))
        self.result["snippet_changed"] = snippet_changed
        self.result["changed"] = changed or snippet_changed
        if changed and not self.module.check_mode and self.module.params["verify"]:
            self.verify()
        if self.result["changed"] and self.module._diff:
            self.result["diff"] = self.diff(target, previous, changed, snippet_changed)
        return self.result

    def diff(self, target, previous, changed, snippet_changed):
        upstreams = dict(before_header=target.path, after_header=target.path,
                         before=dict(upstreams=previous), after=dict(upstreams=self.desired))
        if not self.snippet:
            return upstreams
        return ([upstreams] if changed else []) + ([self.snippet.diff()] if snippet_changed else [])


def main():
    argument_spec = caddy_admin_argument_spec()
    argument_spec.update(
        upstreams=dict(type="list", elements="str", required=True),
        handler_id=dict(type="str"),
        host=dict(type="str"),
        server=dict(type="str"),
        config_path=dict(type="str"),
        verify=dict(type="bool", default=True),
        snippet=dict(type="path"),
        caddyfile=dict(type="path"),
        caddy_binary=dict(type="str", default="caddy"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[SELECTORS],
        required_one_of=[SELECTORS],
        required_by=dict(server="host", caddyfile="snippet"),
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
