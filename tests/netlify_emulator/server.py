# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A local, stateful Netlify API emulator for tests and offline demos.

Every request below /api/v1 is first checked against Netlify's OpenAPI definition (swagger.json,
vendored from the npm package @netlify/open-api). A request the definition does not allow is
answered with HTTP 400 (404/405 for unknown paths/methods) and counted as a violation.

Control endpoints, outside the API base path (JSON in, JSON out):
  GET  /_emulator/state             published deploy and every deploy's flags, per site
  GET  /_emulator/violations        {"count": n, "violations": [...]}
  GET  /_emulator/requests          every request seen: method, path, query, status, user_agent
  POST /_emulator/faults            queue faults, see Fault below
  POST /_emulator/reset             reload the fixture; clear faults, violations and requests
  POST /_emulator/sites/{site}/push a git push: a new production deploy, auto-published unless
                                    the published deploy is locked
  GET  /_sites/{name}/              the site itself: a page naming the published deploy
"""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from .spec import OpenApiSpec, SpecViolation
from .state import FIXTURE_PATH, ApiError, NetlifyState

BASE_PATH = "/api/v1"
DEFAULT_MAX_PER_PAGE = 100
_FAULT_KEYS = {"method", "path", "status", "message", "retry_after", "rate_limit_reset_in", "delay",
               "times", "no_effect", "drop"}


class Fault:
    """One injected fault, matched on method and a regex searched in the request path.

    status            answer with this HTTP status instead of handling the request
    retry_after       add `Retry-After: <seconds>` (with 429)
    rate_limit_reset_in  add `X-RateLimit-Reset: <now + seconds>` (epoch seconds, with 429)
    delay             sleep this many seconds first (a slow response); alone, then handle normally
    no_effect         answer as if the request succeeded, but change nothing
    drop              close the connection without an answer
    times             how many matching requests it applies to (default 1)
    """

    def __init__(self, spec):
        unknown = set(spec) - _FAULT_KEYS
        if unknown:
            raise ValueError("unknown fault keys: %s" % ", ".join(sorted(unknown)))
        self.method = (spec.get("method") or "").upper() or None
        self.path = re.compile(spec["path"]) if spec.get("path") else None
        self.status = spec.get("status")
        self.message = spec.get("message")
        self.retry_after = spec.get("retry_after")
        self.rate_limit_reset_in = spec.get("rate_limit_reset_in")
        self.delay = float(spec.get("delay") or 0)
        self.no_effect = bool(spec.get("no_effect"))
        self.drop = bool(spec.get("drop"))
        self.times = int(spec.get("times", 1))

    def matches(self, method, path):
        return (self.method in (None, method)) and (self.path is None or bool(self.path.search(path)))


class Emulator:
    """The emulator server. Use as a context manager, or start()/stop()."""

    def __init__(self, tokens, fixture_path=FIXTURE_PATH, port=0, max_per_page=DEFAULT_MAX_PER_PAGE,
                 spec=None):
        if not tokens:
            raise ValueError("the emulator needs at least one accepted token")
        self.tokens = set(tokens)
        self.spec = spec or OpenApiSpec.load()
        self.state = NetlifyState(fixture_path)
        self.max_per_page = max_per_page
        self.lock = threading.RLock()
        self.faults = []
        self.violations = []
        self.requests = []
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._server.daemon_threads = True
        self._server.emulator = self
        self.state.base_url = self.url
        self._thread = None

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def api_url(self):
        return self.url + BASE_PATH

    def start(self):
        self._thread = threading.Thread(target=self._server.serve_forever, name="netlify-emulator", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self):
        self._server.serve_forever()

    def stop(self):
        if self._thread:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def reset(self):
        with self.lock:
            self.state.reset()
            self.faults = []
            self.violations = []
            self.requests = []

    def add_faults(self, specs):
        faults = [Fault(spec) for spec in specs]
        with self.lock:
            self.faults.extend(faults)
        return len(faults)

    def take_fault(self, method, path):
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None


class _Handler(BaseHTTPRequestHandler):
    server_version = "NetlifyEmulator/1.0"
    # One request per connection keeps the threaded server simple and clients honest.
    protocol_version = "HTTP/1.0"

    @property
    def emulator(self):
        return self.server.emulator

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Quiet: the request log is kept in memory and served at /_emulator/requests."""

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # -- plumbing --------------------------------------------------------------------------

    def _dispatch(self, method):
        parts = urlsplit(self.path)
        path, query_string = parts.path, parts.query
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        entry = {
            "method": method,
            "path": path,
            "query": query_string,
            "user_agent": self.headers.get("User-Agent", ""),
            "status": None,
            "time": time.time(),
        }
        with self.emulator.lock:
            self.emulator.requests.append(entry)
        try:
            if path.startswith("/_emulator/"):
                status, payload, headers = self._control(method, path[len("/_emulator"):], body)
            elif path.startswith("/_sites/"):
                status, payload, headers = self._site_page(method, path)
            elif path == BASE_PATH or path.startswith(BASE_PATH + "/"):
                status, payload, headers = self._api(method, path[len(BASE_PATH):], query_string, body)
            else:
                status, payload, headers = 404, {"code": 404, "message": "Not Found"}, {}
        except _Dropped:
            entry["status"] = "dropped"
            self.close_connection = True
            return
        entry["status"] = status
        self._send(status, payload, headers)

    def _send(self, status, payload, headers):
        if isinstance(payload, (bytes, str)):
            data = payload.encode("utf-8") if isinstance(payload, str) else payload
            content_type = headers.pop("Content-Type", "text/html; charset=utf-8")
        else:
            data = json.dumps(payload).encode("utf-8")
            content_type = "application/json; charset=utf-8"
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a timeout test); nothing to answer to.
            pass

    def _apply_fault(self, method, path):
        """Faults shared by the API and the site pages; returns (fault, response or None)."""
        fault = self.emulator.take_fault(method, path)
        if fault is None:
            return None, None
        if fault.delay:
            time.sleep(fault.delay)
        if fault.drop:
            raise _Dropped()
        if fault.status:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            if fault.rate_limit_reset_in is not None:
                headers["X-RateLimit-Reset"] = str(int(time.time() + float(fault.rate_limit_reset_in)))
                headers["X-RateLimit-Limit"] = "500"
                headers["X-RateLimit-Remaining"] = "0"
            message = fault.message or _REASONS.get(fault.status, "Injected fault")
            return fault, (fault.status, {"code": fault.status, "message": message}, headers)
        return fault, None

    # -- the API ---------------------------------------------------------------------------

    def _api(self, method, path, query_string, body):
        query = parse_qs(query_string, keep_blank_values=True)
        try:
            operation, params, _parsed = self.emulator.spec.validate_request(
                method, path, query, self.headers, body, self.headers.get("Content-Type"))
        except SpecViolation as exc:
            with self.emulator.lock:
                self.emulator.violations.append(
                    {"method": method, "path": path, "query": query_string, "message": str(exc)})
            message = "Emulator: request violates the Netlify OpenAPI definition: %s" % exc
            return exc.status, {"code": exc.status, "message": message}, {}
        fault, response = self._apply_fault(method, BASE_PATH + path)
        if response:
            return response
        if not self._authorized():
            return 401, {"code": 401, "message": "Access Denied: your token is invalid or expired"}, {}
        handler = getattr(self, "_op_" + operation.operation_id, None)
        if handler is None:
            return 501, {"code": 501, "message": "Emulator: %s is not implemented" % operation.operation_id}, {}
        args = {k: _first(v) for k, v in query.items()}
        try:
            return handler(params, args, effect=not (fault and fault.no_effect))
        except ApiError as exc:
            return exc.status, {"code": exc.status, "message": exc.message}, {}

    def _authorized(self):
        header = self.headers.get("Authorization", "")
        scheme, _sep, token = header.partition(" ")
        return scheme.lower() == "bearer" and token in self.emulator.tokens

    def _op_getSite(self, params, _query, effect=True):
        state = self.emulator.state
        return 200, state.site_json(state.find_site(params["site_id"])), {}

    def _op_listSites(self, _params, query, effect=True):
        state = self.emulator.state
        sites = [state.site_json(s) for s in state.sites.values()]
        if query.get("name"):
            sites = [s for s in sites if query["name"] in s["name"]]
        return self._page(sites, query, "/sites")

    def _op_listSiteDeploys(self, params, query, effect=True):
        state = self.emulator.state
        site = state.find_site(params["site_id"])
        deploys = state.site_deploys(site)
        if query.get("state"):
            deploys = [d for d in deploys if d["state"] == query["state"]]
        if query.get("branch"):
            deploys = [d for d in deploys if d.get("branch") == query["branch"]]
        if query.get("production") == "true":
            deploys = [d for d in deploys if d.get("context") == "production"]
        elif query.get("production") == "false":
            deploys = [d for d in deploys if d.get("context") != "production"]
        if query.get("deploy-previews") == "true":
            deploys = [d for d in deploys if d.get("context") == "deploy-preview"]
        if query.get("latest-published") == "true":
            deploys = [d for d in deploys if d["id"] == site.get("published_deploy")]
        return self._page([state.deploy_json(d) for d in deploys], query,
                          "/sites/%s/deploys" % params["site_id"])

    def _op_getDeploy(self, params, _query, effect=True):
        state = self.emulator.state
        return 200, state.deploy_json(state.find_deploy(params["deploy_id"])), {}

    def _op_getSiteDeploy(self, params, _query, effect=True):
        state = self.emulator.state
        site = state.find_site(params["site_id"])
        deploy = state.find_deploy(params["deploy_id"])
        if deploy["site_id"] != site["id"]:
            raise ApiError(404, "Not Found")
        return 200, state.deploy_json(deploy), {}

    def _op_restoreSiteDeploy(self, params, _query, effect=True):
        state = self.emulator.state
        site = state.find_site(params["site_id"])
        deploy = state.restore(site, params["deploy_id"], effect=effect)
        return 201, state.deploy_json(deploy), {}

    def _op_lockDeploy(self, params, _query, effect=True):
        return self._set_lock(params["deploy_id"], True, effect)

    def _op_unlockDeploy(self, params, _query, effect=True):
        return self._set_lock(params["deploy_id"], False, effect)

    def _set_lock(self, deploy_id, locked, effect):
        state = self.emulator.state
        deploy = state.set_locked(deploy_id, locked) if effect else state.find_deploy(deploy_id)
        return 200, state.deploy_json(deploy), {}

    def _page(self, items, query, api_path):
        """Netlify pagination: page/per_page, and a Link header with next/prev/last."""
        page = max(1, int(query.get("page") or 1))
        per_page = int(query.get("per_page") or self.emulator.max_per_page)
        per_page = max(1, min(per_page, self.emulator.max_per_page))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page:page * per_page]
        base = {k: v for k, v in query.items() if k not in ("page", "per_page")}
        links = []

        def link(number, rel):
            params = dict(base, page=number, per_page=per_page)
            links.append('<%s%s%s?%s>; rel="%s"' % (self.emulator.url, BASE_PATH, api_path, urlencode(params), rel))

        if page < last:
            link(page + 1, "next")
        if page > 1:
            link(page - 1, "prev")
        link(1, "first")
        link(last, "last")
        return 200, chunk, {"Link": ", ".join(links)}

    # -- the site itself -------------------------------------------------------------------

    def _site_page(self, method, path):
        _fault, response = self._apply_fault(method, path)
        if response:
            return response
        match = re.match(r"^/_sites/([^/]+)/", path + "/")
        state = self.emulator.state
        try:
            site = state.find_site_by_name(match.group(1))
        except ApiError:
            return 404, "<h1>Not Found</h1>\n", {}
        published = site.get("published_deploy")
        if not published:
            return 404, "<h1>Site not published</h1>\n", {}
        deploy = state.find_deploy(published)
        page = ('<!doctype html>\n<html><head><meta name="netlify-deploy-id" content="%s"><title>%s</title>'
                '</head><body><h1>%s</h1><p>deploy %s, commit %s</p></body></html>\n'
                % (deploy["id"], site["name"], deploy.get("title", ""), deploy["id"], deploy.get("commit_ref", "")))
        return 200, page, {"X-Emulator-Deploy-Id": deploy["id"]}

    # -- control endpoints -----------------------------------------------------------------

    def _control(self, method, path, body):
        emulator = self.emulator
        try:
            data = json.loads(body.decode("utf-8")) if body else {}
        except ValueError:
            return 400, {"message": "control endpoints take JSON"}, {}
        if method == "GET" and path == "/state":
            snapshot = emulator.state.snapshot()
            with emulator.lock:
                snapshot["violations"] = len(emulator.violations)
            return 200, snapshot, {}
        if method == "GET" and path == "/violations":
            with emulator.lock:
                return 200, {"count": len(emulator.violations), "violations": list(emulator.violations)}, {}
        if method == "GET" and path == "/requests":
            with emulator.lock:
                return 200, {"requests": list(emulator.requests)}, {}
        if method == "POST" and path == "/reset":
            emulator.reset()
            return 200, {"reset": True}, {}
        if method == "POST" and path == "/faults":
            specs = data.get("faults", [data]) if isinstance(data, dict) else data
            try:
                return 200, {"queued": emulator.add_faults(specs)}, {}
            except (ValueError, KeyError, TypeError, re.error) as exc:
                return 400, {"message": "bad fault: %s" % exc}, {}
        match = re.match(r"^/sites/([^/]+)/push$", path)
        if method == "POST" and match:
            try:
                site = emulator.state.find_site(match.group(1))
            except ApiError as exc:
                return exc.status, {"message": exc.message}, {}
            deploy, locked = emulator.state.push(site, **{k: v for k, v in data.items()
                                                          if k in ("commit_ref", "title", "branch", "state",
                                                                   "context")})
            return 200, {"deploy": emulator.state.deploy_json(deploy), "auto_publish_locked": locked,
                         "published": site.get("published_deploy") == deploy["id"]}, {}
        return 404, {"message": "no control endpoint %s %s" % (method, path)}, {}


class _Dropped(Exception):
    """The fault says: close the connection without an answer."""


_REASONS = {
    401: "Access Denied: your token is invalid or expired",
    404: "Not Found",
    429: "Rate limit exceeded",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def _first(values):
    return values[0] if values else None
