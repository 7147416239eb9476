# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Caddy's admin API, as the collection's modules use it.

Two halves:

* pure functions (no I/O, unit-tested one by one): finding ``reverse_proxy`` handlers in a
  Caddy JSON config (``walk_handlers``, ``select_handler``), Caddy's ETag (``fnv1a_32``,
  ``compute_etag``, ``parse_etag``, ``etag_for``) and upstream lists (``validate_upstreams``,
  ``upstream_dials``, ``same_upstream_set``, ``build_upstreams``);
* ``CaddyAdmin``, a small client over ``ansible.module_utils.urls.open_url`` that speaks to
  the admin endpoint over TCP or a unix socket and turns every failure into a
  ``CaddyError`` whose message says what was being done, where, and what Caddy answered.

Where the ETag comes from (the one place in the collection that handles it):
Caddy 2.5.2 to 2.7.x send ``Etag`` as an HTTP *trailer* (Debian 12's caddy 2.6.2 does), which
urllib drops; Caddy 2.8 and later send it as a header. ``etag_for`` takes the header when it
is there and treats it as opaque (2.11 hashes with xxhash, 16 hex digits); only when it is
missing does it compute what 2.6 computes: ``"<request path> <FNV-1a 32-bit of the exact
body bytes, 8 hex digits>"``. Caddy checks ``If-Match`` by hashing, under its config lock,
the config at the path named *inside* the ETag, so an ETag of ``/config/`` guards the whole
config whatever path the write goes to.
"""

from __future__ import annotations

import json
import re
import socket
import time

from http.client import HTTPException, RemoteDisconnected
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlparse

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url

DEFAULT_ADMIN_URL = "http://localhost:2019"
CONFIG_ROOT = "/config/"
UPSTREAMS_STATUS_PATH = "/reverse_proxy/upstreams"
# A GET refused or reset is tried this many times in all, sleeping backoff * attempt between.
GET_CONNECT_ATTEMPTS = 4
GET_CONNECT_BACKOFF = 0.1

FNV32_OFFSET = 0x811C9DC5
FNV32_PRIME = 0x01000193

_DIAL_RE = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.%a-zA-Z]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})$")


def caddy_admin_argument_spec():
    """Options shared by every module that talks to Caddy's admin API (doc fragment
    ``ops.rollback.caddy`` documents them)."""
    return dict(
        admin_url=dict(type="str", default=DEFAULT_ADMIN_URL),
        timeout=dict(type="float", default=10.0),
        retries=dict(type="int", default=3),
    )


# -- errors -------------------------------------------------------------------------------
class CaddyError(Exception):
    """Anything that went wrong talking to Caddy or reading its config."""


class CaddyUnreachableError(CaddyError):
    """The admin endpoint did not answer (refused, timed out, no such socket). ``retryable``:
    refused or reset before an answer, as while Caddy swaps its admin listener."""

    def __init__(self, message, retryable=False):
        super(CaddyUnreachableError, self).__init__(message)
        self.retryable = retryable


class CaddyHTTPError(CaddyError):
    """The admin endpoint answered with an HTTP error status."""

    def __init__(self, message, status, detail):
        super().__init__(message)
        self.status = status
        self.detail = detail


class CaddyConflictError(CaddyHTTPError):
    """HTTP 412: the config changed since it was read (If-Match did not match)."""


class SelectionError(CaddyError):
    """The selector found zero or several handlers, or a handler of the wrong kind."""


# -- ETag ---------------------------------------------------------------------------------
def fnv1a_32(data):
    """FNV-1a, 32 bits, as Go's ``hash/fnv.New32a`` computes it."""
    value = FNV32_OFFSET
    for byte in bytearray(data):
        value ^= byte
        value = (value * FNV32_PRIME) & 0xFFFFFFFF
    return value


def compute_etag(path, body):
    """The ETag Caddy 2.5.2-2.7.x send as a trailer for ``GET <path>`` answering ``body``."""
    return '"%s %08x"' % (path, fnv1a_32(body))


def parse_etag(value):
    """Split a Caddy ETag ``"<config path> <hash>"`` into ``(path, hash)``.

    Caddy itself rejects an If-Match that is not quoted or has not exactly two fields, so
    this raises ``ValueError`` on the same inputs.
    """
    if value is None:
        raise ValueError("no ETag")
    value = value.strip()
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        raise ValueError("ETag %r is not a quoted string" % value)
    parts = value[1:-1].split()
    if len(parts) != 2:
        raise ValueError('ETag %r is not of the form "<config path> <hash>"' % value)
    return parts[0], parts[1]


def etag_for(path, headers, body):
    """``(etag, source)`` for a ``GET <path>`` answer: the ``Etag`` header as is when Caddy
    sent one (source ``header``), else the value Caddy 2.6 sent in the trailer (source
    ``computed``)."""
    header = None
    if headers is not None:
        header = headers.get("Etag") or headers.get("ETag")
    if header:
        return header, "header"
    return compute_etag(path, body), "computed"


# -- upstreams ----------------------------------------------------------------------------
def validate_upstreams(upstreams):
    """Check a list of ``host:port`` dial addresses; return it stripped. Raises ValueError
    naming the offending value."""
    if not upstreams:
        raise ValueError("upstreams must name at least one dial address (host:port)")
    result = []
    for raw in upstreams:
        dial = (raw or "").strip()
        match = _DIAL_RE.match(dial)
        if not match or not 1 <= int(match.group("port")) <= 65535:
            raise ValueError("upstream %r is not a dial address of the form host:port "
                             "(port 1-65535, IPv6 in brackets)" % (raw,))
        if dial in result:
            raise ValueError("upstream %r is listed twice" % dial)
        result.append(dial)
    return result


def upstream_dials(handler):
    """The ``dial`` addresses of a ``reverse_proxy`` handler's static upstreams, in order."""
    return [u.get("dial") for u in (handler.get("upstreams") or []) if isinstance(u, dict)]


def same_upstream_set(current, desired):
    """True when both lists hold the same dial addresses (order and repeats ignored)."""
    return set(current) == set(desired)


def build_upstreams(existing, desired):
    """The new ``upstreams`` value: one object per desired dial, in the desired order. An
    upstream that stays keeps its object as it was (``max_requests`` and the like)."""
    by_dial = {}
    for upstream in existing or []:
        if isinstance(upstream, dict) and upstream.get("dial") not in by_dial:
            by_dial[upstream.get("dial")] = upstream
    return [by_dial.get(dial, {"dial": dial}) for dial in desired]


# -- finding handlers ---------------------------------------------------------------------
class HandlerMatch:
    """One handler found in the config: where it is and what it serves."""

    def __init__(self, path, server, handler, host_sets):
        self.path = path
        self.server = server
        self.handler = handler
        self.host_sets = host_sets

    @property
    def kind(self):
        return self.handler.get("handler")

    @property
    def handler_id(self):
        return self.handler.get("@id")

    @property
    def hosts(self):
        """Host names of the innermost route level that has a host matcher."""
        return sorted(self.host_sets[-1]) if self.host_sets else []

    def serves_host(self, host):
        """Reached for ``host``: every enclosing host matcher accepts it (exact name,
        case-insensitive), and there is at least one."""
        host = host.lower()
        return bool(self.host_sets) and all(host in hosts for hosts in self.host_sets)

    def describe(self):
        bits = [self.path, "handler %s" % self.kind]
        if self.handler_id is not None:
            bits.append("@id %s" % self.handler_id)
        bits.append("server %s" % self.server)
        if self.host_sets:
            bits.append("hosts %s" % ",".join(self.hosts))
        if self.kind == "reverse_proxy":
            bits.append("upstreams %s" % ",".join(str(d) for d in upstream_dials(self.handler)))
        return "%s (%s)" % (bits[0], "; ".join(bits[1:]))

    def __repr__(self):
        return "HandlerMatch(%s)" % self.describe()


def _route_hosts(route):
    """Lower-cased host names of a route's matchers (any matcher set may match), or None."""
    hosts = set()
    for matcher_set in route.get("match") or []:
        if isinstance(matcher_set, dict):
            for host in matcher_set.get("host") or []:
                hosts.add(str(host).lower())
    return hosts or None


def _walk(node, path, server, host_sets, found):
    if isinstance(node, dict):
        if isinstance(node.get("handler"), str):
            found.append(HandlerMatch(path, server, node, list(host_sets)))
        for key in sorted(node):
            value = node[key]
            if key == "match":
                continue
            child = "%s/%s" % (path, key)
            if key == "routes" and isinstance(value, list):
                for index, route in enumerate(value):
                    sets = host_sets
                    if isinstance(route, dict):
                        hosts = _route_hosts(route)
                        if hosts:
                            sets = host_sets + [hosts]
                    _walk(route, "%s/%d" % (child, index), server, sets, found)
            else:
                _walk(value, child, server, host_sets, found)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _walk(item, "%s/%d" % (path, index), server, host_sets, found)


def walk_handlers(config):
    """Every HTTP handler object in a Caddy JSON config, depth first, with its
    ``/config/...`` path, its server and the host matchers of the routes around it.

    Descends into everything that holds routes: ``subroute`` handlers (the Caddyfile wraps
    every site with a host in one, and every ``handle`` block in another), server
    ``errors`` routes, ``handle_response`` routes of a proxy.
    """
    servers = (((config or {}).get("apps") or {}).get("http") or {}).get("servers") or {}
    found = []
    for name in sorted(servers):
        _walk(servers[name], "/config/apps/http/servers/%s" % name, name, [], found)
    return found


def split_config_path(config_path):
    """``/config/a/b/0`` -> ``["a", "b", "0"]``; ValueError when it is not under /config/."""
    path = (config_path or "").strip()
    if not path.startswith("/config/"):
        raise ValueError("config_path %r does not start with /config/" % config_path)
    return [part for part in path[len("/config/"):].split("/") if part != ""]


def normalize_config_path(config_path):
    return "/config/" + "/".join(split_config_path(config_path))


def get_at_path(config, config_path):
    """The value at a ``/config/...`` path (what ``GET`` on it would return); KeyError with
    the first segment that does not exist."""
    node = config
    walked = "/config"
    for part in split_config_path(config_path):
        walked += "/" + part
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(walked)
    return node


def _listing(matches):
    return "; ".join(m.describe() for m in matches) if matches else "none"


def select_handler(config, handler_id=None, host=None, server=None, config_path=None):
    """The one ``reverse_proxy`` handler a selector names, as a ``HandlerMatch``.

    Exactly one of ``handler_id`` (the handler's ``@id``), ``host`` (a site host matcher,
    narrowed by ``server``) and ``config_path`` must be given. Zero or several matches, or a
    handler that is not ``reverse_proxy``, raise ``SelectionError`` listing what was found.
    """
    given = [n for n, v in (("handler_id", handler_id), ("host", host), ("config_path", config_path))
             if v not in (None, "")]
    if len(given) != 1:
        raise SelectionError("exactly one of handler_id, host, config_path is needed, got: %s"
                             % (", ".join(given) or "none"))
    if config is None:
        raise SelectionError("Caddy has no config loaded (GET /config/ returned null)")
    handlers = walk_handlers(config)
    proxies = [m for m in handlers if m.kind == "reverse_proxy"]

    if config_path:
        try:
            path = normalize_config_path(config_path)
        except ValueError as exc:
            raise SelectionError(str(exc))
        try:
            node = get_at_path(config, path)
        except KeyError as exc:
            raise SelectionError("config_path %s does not exist in Caddy's config (no %s); "
                                 "reverse_proxy handlers found: %s" % (path, exc.args[0], _listing(proxies)))
        by_path = [m for m in handlers if m.path == path]
        if not by_path:
            raise SelectionError("config_path %s is not an HTTP handler (it holds a %s); "
                                 "reverse_proxy handlers found: %s"
                                 % (path, type(node).__name__, _listing(proxies)))
        return _only_proxy(by_path[0], "config_path %s" % path)

    if handler_id not in (None, ""):
        wanted = str(handler_id)
        hits = [m for m in handlers if m.handler_id is not None and str(m.handler_id) == wanted]
        if not hits:
            ids = sorted(set(str(m.handler_id) for m in handlers if m.handler_id is not None))
            raise SelectionError("no handler has @id %s; handler @ids found: %s"
                                 % (wanted, ", ".join(ids) or "none"))
        if len(hits) > 1:
            raise SelectionError("%d handlers have @id %s: %s" % (len(hits), wanted, _listing(hits)))
        return _only_proxy(hits[0], "@id %s" % wanted)

    scope = [m for m in proxies if server in (None, "") or m.server == server]
    hits = [m for m in scope if m.serves_host(host)]
    where = "host %s" % host + ("" if server in (None, "") else " in server %s" % server)
    if not hits:
        hosts = sorted(set("%s (%s)" % (h, m.server) for m in proxies for h in m.hosts))
        raise SelectionError("no reverse_proxy handler serves %s; hosts with a reverse_proxy: %s"
                             % (where, ", ".join(hosts) or "none"))
    if len(hits) > 1:
        raise SelectionError("%s matches %d reverse_proxy handlers, select one with handler_id, "
                             "server or config_path: %s" % (where, len(hits), _listing(hits)))
    return hits[0]


def _only_proxy(match, what):
    if match.kind != "reverse_proxy":
        raise SelectionError("%s is a %s handler at %s, not reverse_proxy" % (what, match.kind, match.path))
    if match.handler.get("dynamic_upstreams"):
        raise SelectionError("%s (%s) takes its upstreams from dynamic_upstreams; static upstreams "
                             "would not be used" % (what, match.path))
    return match


# -- the admin API client -----------------------------------------------------------------
def _caddy_error_text(body):
    """Caddy answers errors as ``{"error": "..."}``; fall back to the raw text."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return text.strip()


_HINTS = {
    400: "Caddy rejected the request; mutations need Content-Type: application/json and a "
         "config Caddy can load",
    403: "the admin endpoint only accepts the Host and Origin it listens on (its admin "
         "address, or the admin 'origins' setting): use that address in admin_url",
    404: "the path does not exist in Caddy's config",
    412: "the config changed since it was read (If-Match did not match)",
}


class CaddyAdmin:
    """Talks to one Caddy admin endpoint: ``http://host:port`` or ``unix:///path.sock``."""

    def __init__(self, admin_url=DEFAULT_ADMIN_URL, timeout=10.0, opener=None):
        self.admin_url = admin_url
        self.timeout = timeout
        self._open = opener or open_url
        parsed = urlparse(admin_url)
        if parsed.scheme == "unix":
            self.unix_socket = (parsed.netloc + parsed.path) or None
            if not self.unix_socket:
                raise CaddyError("admin_url %s names no socket path (use unix:///path/admin.sock)" % admin_url)
            # Caddy 2.6 only accepts an empty Host over a unix socket (403 "host not allowed:
            # 127.0.0.1" otherwise); 2.8+ accept any. The URL host is never dialled.
            self.base = "http://127.0.0.1"
            self.headers = {"Host": ""}
        elif parsed.scheme in ("http", "https") and parsed.netloc:
            self.unix_socket = None
            self.base = "%s://%s%s" % (parsed.scheme, parsed.netloc, parsed.path.rstrip("/"))
            # Sent so that an endpoint with enforce_origin accepts us; ignored otherwise.
            self.headers = {"Origin": "%s://%s" % (parsed.scheme, parsed.netloc)}
        else:
            raise CaddyError("admin_url %s is neither http(s)://host:port nor unix:///path" % admin_url)

    def request(self, method, path, what, data=None, headers=None):
        """``(status, headers, body bytes)``; raises CaddyError saying ``what`` failed.

        Caddy replaces its admin listener on every config load, so a connection made just
        after a change (ours or another client's) can be refused or reset before Caddy read
        the request. A GET is retried a few times on that; a write is not (it may have been
        applied): its caller re-reads the config and compares."""
        attempts = GET_CONNECT_ATTEMPTS if method == "GET" else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._request_once(method, path, what, data, headers)
            except CaddyUnreachableError as exc:
                if attempt == attempts or not exc.retryable:
                    raise
                time.sleep(GET_CONNECT_BACKOFF * attempt)

    def _request_once(self, method, path, what, data=None, headers=None):
        all_headers = dict(self.headers)
        all_headers.update(headers or {})
        url = self.base + quote(path, safe="/@:-._~")
        try:
            resp = self._open(url, data=data, headers=all_headers, method=method, timeout=self.timeout,
                              unix_socket=self.unix_socket, follow_redirects="none",
                              use_proxy=self.unix_socket is None)
            body = resp.read()
            return getattr(resp, "status", None) or resp.getcode(), resp.headers, body
        except HTTPError as exc:
            try:
                body = exc.read()
            except Exception:  # pylint: disable=broad-except
                body = b""
            detail = _caddy_error_text(body) or str(exc.reason)
            msg = "%s failed: HTTP %s %s from %s" % (what, exc.code, detail, self.admin_url)
            hint = _HINTS.get(exc.code)
            if hint:
                msg += " (%s)" % hint
            cls = CaddyConflictError if exc.code == 412 else CaddyHTTPError
            raise cls(msg, exc.code, detail)
        except (socket.timeout, TimeoutError, HTTPException) as exc:
            # Connected, but no (complete) answer: a write may have been applied or not.
            if isinstance(exc, HTTPException):
                how = "closed the connection without a complete answer (%r)" % exc
            else:
                how = "did not answer within %s s" % self.timeout
            maybe = "" if method == "GET" else "; the change may or may not have been applied, run again to see"
            raise CaddyUnreachableError("%s failed: Caddy admin API at %s %s%s" % (what, self.admin_url, how, maybe),
                                        retryable=isinstance(exc, RemoteDisconnected))
        except (URLError, UrlsConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            retryable = isinstance(reason, (ConnectionRefusedError, ConnectionResetError))
            if isinstance(reason, (socket.timeout, TimeoutError)):
                reason = "no connection within %s s" % self.timeout
            raise CaddyUnreachableError("%s failed: Caddy admin API at %s is unreachable: %s"
                                        % (what, self.admin_url, reason), retryable=retryable)

    def get_json(self, path, what):
        """``(parsed, raw body, etag, etag source)`` of ``GET <path>``."""
        _status, headers, body = self.request("GET", path, what)
        try:
            parsed = json.loads(body.decode("utf-8")) if body.strip() else None
        except ValueError as exc:
            raise CaddyError("%s failed: the answer from %s is not JSON (%s): %r"
                             % (what, self.admin_url, exc, body[:200]))
        etag, source = etag_for(path, headers, body)
        return parsed, body, etag, source

    def get_config(self):
        """The whole config, its exact bytes and the ETag guarding it."""
        return self.get_json(CONFIG_ROOT, "Reading Caddy's config (GET %s)" % CONFIG_ROOT)

    def write_json(self, method, path, value, if_match, what):
        data = json.dumps(value).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if if_match:
            headers["If-Match"] = if_match
        return self.request(method, path, what, data=data, headers=headers)

    def upstream_status(self):
        """``GET /reverse_proxy/upstreams``: the proxy upstreams Caddy currently runs."""
        parsed = self.get_json(UPSTREAMS_STATUS_PATH, "Reading upstream status (GET %s)" % UPSTREAMS_STATUS_PATH)[0]
        return parsed or []
