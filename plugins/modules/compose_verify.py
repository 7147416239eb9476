#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: compose_verify
short_description: Verify that a Docker Compose stack works, read-only
version_added: 0.1.0
description:
  - Runs the checks of a deployment verification on one Compose project in one call, in this
    order, each one only when enabled.
  - C(running) - every service of the resolved compose config has its expected number of
    running containers.
  - C(health) - every running container with a healthcheck becomes healthy within
    O(health_timeout) seconds.
  - C(restarts) - no container is crash looping, judged from C(RestartCount) and C(StartedAt).
  - C(logs) - no log line since each container started matches O(log_error_patterns) without
    matching O(log_allow_patterns).
  - C(http <url>) - each of O(health_urls) answers as expected.
  - C(integrity <name>) - each of O(integrity_checks) runs a command in a service container
    and compares its output with an expected value or a baseline captured earlier.
  - A failing check does not fail the module; it returns every check's result, and the
    calling role (P(ops.rollback.verify#role)) decides. The module fails only on bad input
    or when Docker cannot be asked.
extends_documentation_fragment:
  - ops.rollback.compose_project
options:
  check_running:
    description: Run the C(running) check.
    type: bool
    default: true
  check_health:
    description: Run the C(health) check.
    type: bool
    default: true
  check_restarts:
    description: Run the C(restarts) check.
    type: bool
    default: true
  check_logs:
    description: Run the C(logs) check.
    type: bool
    default: true
  check_http:
    description: Run the HTTP checks of O(health_urls).
    type: bool
    default: true
  check_integrity:
    description: Run the data-integrity checks of O(integrity_checks).
    type: bool
    default: true
  expected_replicas:
    description:
      - Running containers expected per service, overriding the resolved compose config.
      - Otherwise a service expects its C(deploy.replicas), else its C(scale), else one.
        Services that are not in the resolved config (inactive profiles, orphans) expect none.
    type: dict
    default: {}
  health_timeout:
    description: Seconds to wait, for all containers together, until every healthcheck passes.
    type: int
    default: 60
  restarts_since:
    description:
      - RFC 3339 time. A container fails the C(restarts) check when it restarted
        (C(RestartCount) > 0) and its last start is at or after this time.
      - When empty, a container that restarted fails when its last start is less than
        O(restarts_window) seconds ago.
      - A container that is restarting right now always fails.
    type: str
    default: ''
  restarts_window:
    description: Seconds after a restart in which it counts as a crash loop, when O(restarts_since) is empty.
    type: int
    default: 300
  log_since:
    description:
      - Read logs since this time (RFC 3339, Unix timestamp or Go duration such as C(10m)).
      - When empty, each container's log since its last start.
    type: str
    default: ''
  log_error_patterns:
    description: Regular expressions (Python C(re), searched in each line) that mark an error line.
    type: list
    elements: str
    default: ['(?i)\b(error|fatal|panic|traceback)\b']
  log_allow_patterns:
    description: Regular expressions of lines that are never errors, even when they match O(log_error_patterns).
    type: list
    elements: str
    default: []
  health_urls:
    description: HTTP endpoints to ask with C(GET), one check each.
    type: list
    elements: dict
    default: []
    suboptions:
      url:
        description: An http or https URL.
        type: str
        required: true
      status:
        description:
          - Expected HTTP status.
          - Redirects are followed (C(GET) only), unless this is a 3xx status.
        type: int
        default: 200
      body_regex:
        description: Regular expression the body must match (searched, multi-line).
        type: str
      json_field:
        description: Dotted path of a field the JSON body must have, such as C(version) or C(a.b) or C(items.0.id).
        type: str
      json_value:
        description: Value that O(health_urls[].json_field) must have (compared as text when the types differ).
        type: raw
      retries:
        description: Retries after a failed attempt.
        type: int
        default: 10
      delay:
        description: Seconds between attempts.
        type: float
        default: 1
      timeout:
        description: Seconds one request may take.
        type: float
        default: 5
      validate_certs:
        description: Validate the server's TLS certificate.
        type: bool
        default: true
  integrity_checks:
    description: Commands whose output says whether the data are intact, one check each.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Unique name; the check is reported as C(integrity <name>) and its baseline is kept under it.
        type: str
        required: true
      service:
        description: Compose service in whose first running container the command runs (C(docker exec)).
        type: str
        required: true
      argv:
        description: The command, as an argument list (no shell).
        type: list
        elements: str
        required: true
      user:
        description: User to run the command as (C(docker exec --user)).
        type: str
      expected:
        description: Expected output.
        type: str
      compare_to_baseline:
        description: Compare the output with O(integrity_baseline) under this check's name.
        type: bool
        default: false
      strip:
        description: Strip leading and trailing white space from the output before comparing or capturing it.
        type: bool
        default: true
  integrity_baseline:
    description: Outputs captured earlier (the RV(baseline) of a previous run), by check name.
    type: dict
    default: {}
  capture_baseline:
    description: Only capture the outputs of O(integrity_checks) into RV(baseline); compare nothing.
    type: bool
    default: false
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target.
    support: full
    details: Read-only; every check runs in check mode too.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    support: full
    details: Read-only; it never changes anything.
notes:
  - The commands of O(integrity_checks) run in check mode too; they must only read.
seealso:
  - name: The ops.rollback.verify role
    description: Runs this module and fails with one message naming every failing check.
    link: https://example.invalid/ops/rollback/docs/verify.md
author:
  - ops.rollback maintainers (@ops-rollback)
"""

EXAMPLES = r"""
- name: Verify the shop stack
  ops.rollback.compose_verify:
    project_dir: /srv/shop
    project_name: shop
    health_timeout: 90
    log_allow_patterns:
      - 'error_log'
    health_urls:
      - url: http://127.0.0.1:8080/health
        json_field: status
        json_value: ok
    integrity_checks:
      - name: orders
        service: db
        argv: [psql, -U, postgres, -d, shop, -tAc, 'SELECT count(*) FROM orders']
        compare_to_baseline: true
    integrity_baseline: "{{ shop_before.baseline }}"
  register: shop_verify

- name: Fail when a check failed
  ansible.builtin.fail:
    msg: "{{ shop_verify.msg }}"
  when: not shop_verify.passed
"""

RETURN = r"""
passed:
  description: Whether every check passed.
  returned: always
  type: bool
  sample: false
checks:
  description: The checks that ran, in order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: C(running), C(health), C(restarts), C(logs), C(http <url>) or C(integrity <name>).
      type: str
      sample: running
    kind:
      description: C(running), C(health), C(restarts), C(logs), C(http) or C(integrity).
      type: str
      sample: running
    passed:
      description: Whether the check passed.
      type: bool
    detail:
      description: What was found.
      type: str
      sample: "web: 0 of 1 running (shop-web-1 exited (1))"
    duration_s:
      description: Seconds the check took.
      type: float
      sample: 0.12
failed_checks:
  description: Names of the checks that failed.
  returned: always
  type: list
  elements: str
  sample: [running, "http http://127.0.0.1:8080/health"]
baseline:
  description: Output of each integrity check that ran its command successfully, by check name.
  returned: always
  type: dict
  sample: {orders: "1000"}
summary:
  description: One readable line per check.
  returned: always
  type: list
  elements: str
  sample: ["PASS running - db 1/1, web 1/1 running (0.05 s)"]
msg:
  description: One message naming every failing check with its detail, or that all passed.
  returned: always
  type: str
"""

import datetime
import time
from http.client import HTTPException
from urllib.error import HTTPError, URLError

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text
from ansible.module_utils.urls import open_url

from ansible_collections.ops.rollback.plugins.module_utils import _verify as v
from ansible_collections.ops.rollback.plugins.module_utils._names import NameError_, check_project_name
from ansible_collections.ops.rollback.plugins.module_utils._docker_cli import (
    DockerCli,
    DockerCliError,
    compose_project_argument_spec,
    container_name,
    fail_unless_project_dir,
)

DEFAULT_ERROR_PATTERNS = [r"(?i)\b(error|fatal|panic|traceback)\b"]


def argument_spec():
    spec = compose_project_argument_spec()
    spec.update(
        check_running=dict(type="bool", default=True),
        check_health=dict(type="bool", default=True),
        check_restarts=dict(type="bool", default=True),
        check_logs=dict(type="bool", default=True),
        check_http=dict(type="bool", default=True),
        check_integrity=dict(type="bool", default=True),
        expected_replicas=dict(type="dict", default={}),
        health_timeout=dict(type="int", default=60),
        restarts_since=dict(type="str", default=""),
        restarts_window=dict(type="int", default=300),
        log_since=dict(type="str", default=""),
        log_error_patterns=dict(type="list", elements="str", default=DEFAULT_ERROR_PATTERNS),
        log_allow_patterns=dict(type="list", elements="str", default=[]),
        health_urls=dict(type="list", elements="dict", default=[], options=dict(
            url=dict(type="str", required=True),
            status=dict(type="int", default=200),
            body_regex=dict(type="str"),
            json_field=dict(type="str"),
            json_value=dict(type="raw"),
            retries=dict(type="int", default=10),
            delay=dict(type="float", default=1),
            timeout=dict(type="float", default=5),
            validate_certs=dict(type="bool", default=True),
        )),
        integrity_checks=dict(type="list", elements="dict", default=[], options=dict(
            name=dict(type="str", required=True),
            service=dict(type="str", required=True),
            argv=dict(type="list", elements="str", required=True),
            user=dict(type="str"),
            expected=dict(type="str"),
            compare_to_baseline=dict(type="bool", default=False),
            strip=dict(type="bool", default=True),
        )),
        integrity_baseline=dict(type="dict", default={}),
        capture_baseline=dict(type="bool", default=False),
    )
    return spec


def fetch(url, timeout, validate_certs, follow_redirects=True):
    """GET ``url``: ``(status, body text)``, or ``(None, why)`` when there was no answer."""
    try:
        response = open_url(url, method="GET", timeout=timeout, validate_certs=validate_certs,
                            follow_redirects="safe" if follow_redirects else "none")
        return response.getcode(), to_text(response.read(), errors="surrogate_or_replace")
    except HTTPError as exc:
        try:
            body = exc.read()
        except (OSError, HTTPException, AttributeError):
            body = b""
        return exc.code, to_text(body or b"", errors="surrogate_or_replace")
    except (URLError, HTTPException, OSError, ValueError) as exc:
        return None, to_text(getattr(exc, "reason", None) or exc)


class Verifier:
    """Gathers what each check needs and records the checks; the decisions are in _verify."""

    def __init__(self, params, cli, fetch_url=fetch, clock=time.monotonic, sleep=time.sleep, now=None):
        self.params = params
        self.cli = cli
        self.fetch = fetch_url
        self.clock = clock
        self.sleep = sleep
        self.now = now or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self.checks = []
        self.baseline = {}
        self._containers = None
        self.replicas = {}
        self.since = None
        self.errors = []
        self.allows = []

    # -- input --------------------------------------------------------------------------
    def validate(self):
        """Raise v.InputError naming the option of the first bad value; nothing is asked yet."""
        p = self.params
        try:
            check_project_name(p["project_name"])
        except NameError_ as exc:
            raise v.InputError(str(exc))
        for key in ("health_timeout", "restarts_window"):
            if p[key] < 0:
                raise v.InputError("%s: must not be negative, got %d" % (key, p[key]))
        try:
            self.replicas = dict((str(k), int(n)) for k, n in (p["expected_replicas"] or {}).items())
        except (TypeError, ValueError):
            raise v.InputError("expected_replicas: every value must be a whole number, got %r" % (p["expected_replicas"],))
        negative = sorted(k for k, n in self.replicas.items() if n < 0)
        if negative:
            raise v.InputError("expected_replicas.%s: must not be negative" % negative[0])
        try:
            self.since = v.parse_time(p["restarts_since"])
        except ValueError as exc:
            raise v.InputError("restarts_since: %s" % exc)
        self.errors = v.compile_patterns(p["log_error_patterns"], "log_error_patterns")
        self.allows = v.compile_patterns(p["log_allow_patterns"], "log_allow_patterns")
        v.validate_health_urls(p["health_urls"])
        v.validate_integrity_checks(p["integrity_checks"], p["integrity_baseline"], p["capture_baseline"])

    # -- plumbing -----------------------------------------------------------------------
    def containers(self, fresh=False):
        if self._containers is None or fresh:
            self._containers = self.cli.project_containers()
        return self._containers

    def record(self, name, kind, started, passed, detail):
        taken = set(c["name"] for c in self.checks)
        self.checks.append(v.check_record(v.unique_name(name, taken), kind, passed, detail, self.clock() - started))

    # -- checks -------------------------------------------------------------------------
    def check_running(self):
        started = self.clock()
        expected = v.expected_replicas(self.cli.compose_config(), self.replicas)
        passed, detail = v.check_running(expected, self.containers(fresh=True))
        self.record("running", "running", started, passed, detail)

    def check_health(self):
        started = self.clock()
        passed, detail, containers = v.wait_for_health(lambda: self.containers(fresh=True),
                                                       self.params["health_timeout"], self.clock, self.sleep)
        self._containers = containers
        self.record("health", "health", started, passed, detail)

    def check_restarts(self):
        started = self.clock()
        passed, detail = v.check_restarts(self.containers(), self.since, self.now(), self.params["restarts_window"])
        self.record("restarts", "restarts", started, passed, detail)

    def check_logs(self):
        started = self.clock()
        found = {}
        for container in self.containers():
            since = v.log_since(container, self.params["log_since"])
            if since is None and not self.params["log_since"]:
                continue  # never started: no log of this run
            text = self.cli.logs(container["Id"], since=since)
            found[container_name(container)] = v.error_lines(text, self.errors, self.allows)
        passed, detail = v.check_logs(found)
        self.record("logs", "logs", started, passed, detail)

    def check_http(self, expect):
        started = self.clock()
        attempts = expect["retries"] + 1
        # Expecting a redirect: look at it rather than where it leads.
        follow = not 300 <= expect["status"] < 400
        for attempt in range(1, attempts + 1):
            status, body = self.fetch(expect["url"], expect["timeout"], expect["validate_certs"], follow)
            passed, detail = v.check_http(expect, status, body)
            if passed or attempt == attempts:
                break
            self.sleep(expect["delay"])
        if not passed and attempts > 1:
            detail = "%s (after %d attempts)" % (detail, attempts)
        self.record("http %s" % expect["url"], "http", started, passed, detail)

    def check_integrity(self, check):
        started = self.clock()
        name = "integrity %s" % check["name"]
        target = v.integrity_target(self.containers(), check["service"])
        if target is None:
            self.record(name, "integrity", started, False, "no running container of service %s" % check["service"])
            return
        rc, out, err = self.cli.exec_in(target["Id"], check["argv"], user=check["user"])
        if rc != 0:
            self.record(name, "integrity", started, False, "%s in %s exited with %s: %s" % (
                " ".join(check["argv"]), container_name(target), rc, (err or out).strip()))
            return
        output = v.command_output(out, check["strip"])
        self.baseline[check["name"]] = output
        baseline = v.MISSING
        if check["compare_to_baseline"]:
            baseline = self.params["integrity_baseline"].get(check["name"])
        passed, detail = v.check_integrity(output, check["expected"], baseline, self.params["capture_baseline"])
        self.record(name, "integrity", started, passed, detail)

    def run(self):
        p = self.params
        if p["check_running"]:
            self.check_running()
        if p["check_health"]:
            self.check_health()
        if p["check_restarts"]:
            self.check_restarts()
        if p["check_logs"]:
            self.check_logs()
        if p["check_http"]:
            for expect in p["health_urls"]:
                self.check_http(expect)
        if p["check_integrity"]:
            for check in p["integrity_checks"]:
                self.check_integrity(check)
        return self.result()

    def result(self):
        failed = [c["name"] for c in self.checks if not c["passed"]]
        msg = v.failure_message(self.params["project_name"], self.checks) or \
            "All %d checks of Compose project %s passed" % (len(self.checks), self.params["project_name"])
        return dict(changed=False, passed=not failed, checks=self.checks, failed_checks=failed,
                    baseline=self.baseline, summary=v.summary_lines(self.checks), msg=msg)


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    verifier = Verifier(p, None)
    try:
        verifier.validate()
    except v.InputError as exc:
        module.fail_json(msg="Invalid input for verifying Compose project %s: %s" % (p["project_name"], exc))
    fail_unless_project_dir(module)
    try:
        verifier.cli = DockerCli(module, p["project_dir"], p["project_name"], p["files"])
        result = verifier.run()
    except (DockerCliError, ValueError) as exc:
        module.fail_json(msg="Verifying Compose project %s in %s failed: %s" % (p["project_name"], p["project_dir"], exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
