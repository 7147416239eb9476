# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""The Netlify API client shared by the netlify_* modules.

Authentication, the User-Agent, Link-header pagination and bounded retries live here; the
choice of which deploy to publish lives in _netlify_targets.py. HTTP goes through
ansible.module_utils.urls so proxies and CA settings behave as everywhere else in Ansible.
"""

from __future__ import annotations

import email.utils
import json
import random
import re
import socket
import ssl
import time

from http.client import HTTPException
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode, urljoin, urlsplit

from ansible.module_utils.basic import env_fallback
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import Request, SSLValidationError, make_context

# Keep in step with galaxy.yml (a unit test compares them).
COLLECTION_NAME = "ops.rollback"
COLLECTION_VERSION = "0.1.0"
USER_AGENT = "ansible-collection-%s/%s" % (COLLECTION_NAME, COLLECTION_VERSION)

DEFAULT_API_URL = "https://api.netlify.com/api/v1"
TOKEN_ENV = "NETLIFY_AUTH_TOKEN"
MAX_PER_PAGE = 100
MAX_PAGES = 1000

# The states listSiteDeploys accepts as a filter (Netlify OpenAPI definition).
DEPLOY_STATES = [
    "new", "pending_review", "accepted", "rejected", "enqueued", "building", "uploading",
    "uploaded", "preparing", "prepared", "processing", "processed", "ready", "error", "retrying",
]


def netlify_argument_spec():
    """Options every netlify_* module takes; documented in the ops.rollback.netlify doc fragment."""
    return dict(
        auth_token=dict(type="str", required=True, no_log=True, fallback=(env_fallback, [TOKEN_ENV])),
        api_url=dict(type="str", default=DEFAULT_API_URL),
        validate_certs=dict(type="bool", default=True),
        timeout=dict(type="float", default=30.0),
        max_retries=dict(type="int", default=5),
        retry_delay=dict(type="float", default=1.0),
        retry_max_delay=dict(type="float", default=60.0),
    )


class NetlifyError(Exception):
    """A failed API request. The message names the request and never contains the token."""

    def __init__(self, message, status=None, method=None, path=None, api_message=None):
        super().__init__(message)
        self.status = status
        self.method = method
        self.path = path
        self.api_message = api_message


def parse_link_header(value):
    """Map each rel of an RFC 8288 Link header to its URL: {'next': 'https://...', ...}."""
    links = {}
    link_re = r'<([^>]*)>((?:\s*;\s*[^;,"=\s]+\s*(?:=\s*(?:"[^"]*"|[^;,\s]*))?)*)'
    param_re = r';\s*([^;,"=\s]+)\s*(?:=\s*(?:"([^"]*)"|([^;,\s]*)))?'
    for match in re.finditer(link_re, value or ""):
        for param in re.finditer(param_re, match.group(2)):
            if param.group(1).lower() != "rel":
                continue
            rel = param.group(2) if param.group(2) is not None else (param.group(3) or "")
            for name in rel.split():
                links.setdefault(name.lower(), match.group(1))
    return links


def rate_limit_delay(headers, now):
    """Seconds a 429 answer asks us to wait (Retry-After, then X-RateLimit-Reset), or None."""
    retry_after = (headers.get("Retry-After") or "").strip()
    if retry_after:
        if re.match(r"^[0-9]+(\.[0-9]+)?$", retry_after):
            return float(retry_after)
        try:
            when = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            return max(0.0, when.timestamp() - now)
    reset = (headers.get("X-RateLimit-Reset") or "").strip()
    if re.match(r"^[0-9]+(\.[0-9]+)?$", reset):
        reset_value = float(reset)
        # Netlify sends epoch seconds; a small number can only be a delay in seconds.
        return max(0.0, reset_value - now) if reset_value > 1e9 else reset_value
    return None


def backoff_delay(attempt, base, cap, rand):
    """Exponential backoff with jitter: between half and all of min(cap, base * 2**attempt)."""
    ceiling = min(cap, base * (2 ** attempt))
    return ceiling / 2.0 + rand() * ceiling / 2.0


class NetlifyClient:
    """A small Netlify API client. `opener`, `sleep`, `clock` and `rand` are there for tests."""

    def __init__(self, token, api_url=DEFAULT_API_URL, timeout=30.0, validate_certs=True, max_retries=5,
                 retry_delay=1.0, retry_max_delay=60.0, opener=None, sleep=time.sleep, clock=time.time,
                 rand=random.random):
        if not token:
            raise NetlifyError("No Netlify token: set auth_token or the %s environment variable" % TOKEN_ENV)
        self._token = token
        self.api_url = api_url.rstrip("/")
        parts = urlsplit(self.api_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise NetlifyError("api_url must be an http(s) URL, got %r" % api_url)
        self._origin = (parts.scheme, parts.netloc)
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.max_retries = max(0, max_retries)
        self.retry_delay = retry_delay
        self.retry_max_delay = retry_max_delay
        self._opener = opener or Request(http_agent=USER_AGENT, follow_redirects="safe")
        self._tls_context = None
        self._sleep = sleep
        self._clock = clock
        self._rand = rand
        self.calls = 0
        self.retries = []

    # -- requests --------------------------------------------------------------------------

    def path(self, template, *values):
        """An API path with each value quoted as one path segment: path('/sites/{}', site_id)."""
        return template.format(*[quote(str(v), safe="") for v in values])

    def url(self, path, query=None):
        url = self.api_url + path
        if query:
            url += "?" + urlencode([(k, v) for k, v in query.items() if v is not None])
        return url

    def redact(self, text):
        text = str(text)
        return text.replace(self._token, "********") if self._token else text

    def request(self, method, path, query=None, body=None):
        """Send one API request with retries; return (status, headers, decoded JSON or None)."""
        return self._send(method, self.url(path, query), body)

    def _send(self, method, url, body):
        shown = self._display(url)
        headers = {
            "Authorization": "Bearer %s" % self._token,
            "Accept": "application/json",
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            self.calls += 1
            try:
                response = self._opener.open(
                    method, url, data=data, headers=headers, timeout=self.timeout,
                    validate_certs=self.validate_certs, unredirected_headers=["Authorization"],
                    context=self._context())
                raw = response.read()
                return response.getcode(), response.headers, self._decode(method, shown, raw)
            except HTTPError as exc:
                status = exc.code
                response_headers = exc.headers or {}
                api_message = self._api_message(exc)
                problem = "HTTP %d %s" % (status, api_message)
                if status == 429:
                    delay = rate_limit_delay(response_headers, self._clock())
                    if delay is None:
                        delay = backoff_delay(attempt, self.retry_delay, self.retry_max_delay, self._rand)
                elif 500 <= status <= 599:
                    delay = backoff_delay(attempt, self.retry_delay, self.retry_max_delay, self._rand)
                else:
                    raise NetlifyError(self.redact("%s %s: %s%s" % (method, shown, problem, _hint(status))),
                                       status=status, method=method, path=shown,
                                       api_message=self.redact(api_message))
            except SSLValidationError as exc:
                raise NetlifyError(self.redact("%s %s: TLS certificate check failed: %s" % (method, shown, exc)),
                                   method=method, path=shown)
            except URLError as exc:
                if isinstance(exc.reason, ssl.CertificateError):
                    raise NetlifyError(self.redact("%s %s: TLS certificate check failed: %s"
                                                   % (method, shown, exc.reason)), method=method, path=shown)
                status, problem = None, "connection failed: %s" % (exc.reason,)
                delay = backoff_delay(attempt, self.retry_delay, self.retry_max_delay, self._rand)
            except (socket.timeout, TimeoutError) as exc:
                status, problem = None, "no answer within %s s (%s)" % (self.timeout, exc or "timed out")
                delay = backoff_delay(attempt, self.retry_delay, self.retry_max_delay, self._rand)
            except (HTTPException, UrlsConnectionError, OSError) as exc:
                status, problem = None, "connection failed: %s" % (exc,)
                delay = backoff_delay(attempt, self.retry_delay, self.retry_max_delay, self._rand)
            if attempt >= self.max_retries:
                raise NetlifyError(self.redact("%s %s: %s (gave up after %d attempts)"
                                               % (method, shown, problem, attempt + 1)),
                                   status=status, method=method, path=shown)
            if delay > self.retry_max_delay:
                raise NetlifyError(self.redact("%s %s: %s; the API asks to wait %.0f s, more than retry_max_delay "
                                               "(%.0f s)" % (method, shown, problem, delay, self.retry_max_delay)),
                                   status=status, method=method, path=shown)
            self.retries.append({"method": method, "path": shown, "problem": self.redact(problem),
                                 "delay": round(delay, 3)})
            self._sleep(delay)
            attempt += 1

    def _context(self):
        """One TLS context for all requests: building it reads the CA store, which is slow."""
        if self._tls_context is None:
            self._tls_context = make_context(validate_certs=self.validate_certs)
        return self._tls_context

    def _display(self, url):
        """The URL as shown in messages: the path below api_url, with the query."""
        return url[len(self.api_url):] if url.startswith(self.api_url) else url

    def _decode(self, method, shown, raw):
        if not raw:
            return None
        try:
            return json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            raise NetlifyError("%s %s: the answer is not JSON (%s)" % (method, shown, exc), method=method, path=shown)

    def _api_message(self, exc):
        try:
            raw = exc.read()
        except (OSError, HTTPException):
            raw = b""
        try:
            data = json.loads(raw.decode("utf-8"))
            message = data.get("message") or data.get("error") or ""
        except (ValueError, AttributeError):
            message = raw.decode("utf-8", "replace")[:200]
        return self.redact(message or exc.reason or "")

    # -- pagination ------------------------------------------------------------------------

    def paginate(self, path, query=None, limit=None):
        """Yield items of a list endpoint page by page, following Link rel="next"."""
        query = dict(query or {})
        query["per_page"] = min(MAX_PER_PAGE, limit) if limit else MAX_PER_PAGE
        url = self.url(path, query)
        seen = set()
        count = 0
        while url:
            seen.add(url)
            _status, headers, items = self._send("GET", url, None)
            if not isinstance(items, list):
                raise NetlifyError("GET %s: expected a list, got %s" % (self._display(url), type(items).__name__))
            for item in items:
                yield item
                count += 1
                if limit and count >= limit:
                    return
            next_url = parse_link_header(headers.get("Link")).get("next")
            if not next_url or not items:
                return
            next_url = urljoin(url, next_url)
            parts = urlsplit(next_url)
            if (parts.scheme, parts.netloc) != self._origin:
                # Never send the token anywhere but api_url.
                raise NetlifyError("GET %s: the next page is on another host (%s); not following it"
                                   % (self._display(url), parts.netloc))
            if next_url in seen or len(seen) >= MAX_PAGES:
                raise NetlifyError("GET %s: pagination does not end (page %d)" % (self._display(url), len(seen)))
            url = next_url

    # -- API operations --------------------------------------------------------------------

    def get_site(self, site_id):
        return self.request("GET", self.path("/sites/{}", site_id))[2]

    def iter_site_deploys(self, site_id, state=None, branch=None, production=None, limit=None):
        query = {"state": state, "branch": branch}
        if production is not None:
            query["production"] = "true" if production else "false"
        return self.paginate(self.path("/sites/{}/deploys", site_id), query, limit)

    def get_deploy(self, deploy_id):
        return self.request("GET", self.path("/deploys/{}", deploy_id))[2]

    def restore_deploy(self, site_id, deploy_id):
        return self.request("POST", self.path("/sites/{}/deploys/{}/restore", site_id, deploy_id))[2]

    def lock_deploy(self, deploy_id):
        return self.request("POST", self.path("/deploys/{}/lock", deploy_id))[2]


def _hint(status):
    if status == 401:
        return " (check auth_token or %s; the token is not shown)" % TOKEN_ENV
    if status == 403:
        return " (the token has no access to this resource)"
    if status == 404:
        return " (not found, or the token has no access to it)"
    return ""


def client_from_module(module):
    """A NetlifyClient from the module's netlify_argument_spec() options; fails the module on bad input."""
    params = module.params
    parts = urlsplit(params["api_url"] or "")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        module.warn("api_url %s is plain HTTP: the token travels unencrypted" % params["api_url"])
    for name in ("timeout", "retry_delay", "retry_max_delay", "max_retries"):
        if params[name] < 0 or (name == "timeout" and params[name] == 0):
            module.fail_json(msg="%s must be %s, got %s" % (name, "> 0" if name == "timeout" else ">= 0", params[name]))
    try:
        return NetlifyClient(
            params["auth_token"], api_url=params["api_url"], timeout=params["timeout"],
            validate_certs=params["validate_certs"], max_retries=params["max_retries"],
            retry_delay=params["retry_delay"], retry_max_delay=params["retry_max_delay"])
    except NetlifyError as exc:
        module.fail_json(msg=str(exc))
