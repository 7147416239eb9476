# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The decisions behind ``ops.rollback.compose_verify``: pure functions, no Docker, no network.

Each check takes what the module read (container inspect data, a log, an HTTP answer, a
command's output) and returns ``(passed, detail)``; the module only gathers the inputs and
times the checks. Everything here is unit tested in tests/unit/plugins/module_utils.
"""

from __future__ import annotations

import datetime
import json
import re

from ansible_collections.ops.rollback.plugins.module_utils._docker_cli import container_name, service_of

DEFAULT_REPLICAS = 1
LOG_LINES_SHOWN = 3
BODY_SHOWN = 80

_UTC = datetime.timezone.utc
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:?\d{2})$")
_URL = re.compile(r"^https?://[^/\s?#@:]+(?::\d+)?(?:[/?#]\S*)?$", re.IGNORECASE)
_URL_IPV6 = re.compile(r"^https?://\[[0-9a-f:.]+\](?::\d+)?(?:[/?#]\S*)?$", re.IGNORECASE)
MISSING = object()


class InputError(ValueError):
    """An option value the checks cannot work with; the message names the option."""


# -- input ------------------------------------------------------------------------------
def parse_time(value):
    """An RFC 3339 time (any fraction length, as Docker writes them) as an aware UTC datetime.

    Empty values and Docker's zero time (``0001-01-01T00:00:00Z``, never started) give None.
    Raises ValueError when the value is not RFC 3339.
    """
    if not value:
        return None
    match = _RFC3339.match(value.strip())
    if not match:
        raise ValueError("%r is not an RFC 3339 time (like 2024-05-01T12:00:00Z)" % (value,))
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if int(year) <= 1:
        return None
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    if zone in ("Z", "z"):
        tz = _UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = datetime.timezone(sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    moment = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
    return moment.astimezone(_UTC)


def is_http_url(url):
    """True for an http or https URL that names a host."""
    return isinstance(url, str) and bool(_URL.match(url) or _URL_IPV6.match(url))


def compile_patterns(patterns, option):
    """Compile regular expressions; InputError names ``option[index]`` of a bad one."""
    compiled = []
    for index, pattern in enumerate(patterns or []):
        try:
            compiled.append(re.compile(pattern))
        except (re.error, TypeError) as exc:
            raise InputError("%s[%d]: %r is not a valid regular expression: %s" % (option, index, pattern, exc))
    return compiled


def validate_health_urls(entries, option="health_urls"):
    """Raise InputError naming the first bad entry of the HTTP expectations."""
    for index, entry in enumerate(entries or []):
        where = "%s[%d]" % (option, index)
        if not is_http_url(entry.get("url")):
            raise InputError("%s.url: %r is not an http or https URL with a host" % (where, entry.get("url")))
        status = entry.get("status")
        if status is not None and not 100 <= status <= 599:
            raise InputError("%s.status: %r is not an HTTP status (100-599)" % (where, status))
        for key in ("retries", "delay", "timeout"):
            if entry.get(key) is not None and entry[key] < 0:
                raise InputError("%s.%s: must not be negative, got %r" % (where, key, entry[key]))
        if entry.get("json_value") is not None and not entry.get("json_field"):
            raise InputError("%s.json_value: needs json_field to say which field to compare" % where)
        if entry.get("body_regex") is not None:
            compile_patterns([entry["body_regex"]], where + ".body_regex")


def validate_integrity_checks(entries, baseline, capture, option="integrity_checks"):
    """Raise InputError naming the first bad data-integrity check."""
    seen = set()
    for index, entry in enumerate(entries or []):
        where = "%s[%d]" % (option, index)
        name = entry.get("name")
        if not name:
            raise InputError("%s.name: must not be empty" % where)
        if name in seen:
            raise InputError("%s.name: %r is used by more than one check" % (where, name))
        seen.add(name)
        if not entry.get("service"):
            raise InputError("%s.service: must not be empty" % where)
        if not entry.get("argv"):
            raise InputError("%s.argv: must be a non-empty list" % where)
        if entry.get("compare_to_baseline") and not capture and name not in (baseline or {}):
            raise InputError("%s.compare_to_baseline: no baseline for %r in integrity_baseline" % (where, name))


# -- running ----------------------------------------------------------------------------
def expected_replicas(config, overrides=None):
    """Per service of the resolved compose config, how many containers should run.

    ``deploy.replicas`` wins over ``scale``; ``deploy.mode: global`` means one (one engine);
    otherwise one. Services of inactive profiles are not in the resolved config: running
    containers of them are expected to be zero (see check_running). ``overrides`` win.
    """
    expected = {}
    for name, service in ((config or {}).get("services") or {}).items():
        service = service or {}
        deploy = service.get("deploy") or {}
        if deploy.get("mode") == "global":
            count = 1
        elif deploy.get("replicas") is not None:
            count = deploy["replicas"]
        elif service.get("scale") is not None:
            count = service["scale"]
        else:
            count = DEFAULT_REPLICAS
        expected[name] = int(count)
    for name, count in (overrides or {}).items():
        expected[name] = int(count)
    return expected


def is_running(container):
    """Running and serving: not paused and not between two restarts."""
    state = container.get("State") or {}
    return bool(state.get("Running")) and not state.get("Restarting") and not state.get("Paused")


def state_word(container):
    """A short word for the container's state: running, restarting, paused, exited (1), ..."""
    state = container.get("State") or {}
    if state.get("Restarting"):
        return "restarting"
    if state.get("Paused"):
        return "paused"
    if state.get("Running"):
        return "running"
    status = state.get("Status") or "not running"
    if status == "exited":
        return "exited (%s)" % state.get("ExitCode")
    return status


def check_running(expected, containers):
    """Every service has its expected number of running containers, no more, no less."""
    running = {}
    not_running = {}
    for container in containers:
        service = service_of(container)
        if service is None:
            continue
        if is_running(container):
            running[service] = running.get(service, 0) + 1
        else:
            not_running.setdefault(service, []).append("%s %s" % (container_name(container), state_word(container)))
    problems = []
    counts = []
    for service in sorted(set(expected) | set(running)):
        want = expected.get(service, 0)
        have = running.get(service, 0)
        counts.append("%s %d/%d" % (service, have, want))
        if have != want:
            others = not_running.get(service)
            problems.append("%s: %d of %d running%s" % (service, have, want, " (%s)" % ", ".join(others) if others else ""))
    if problems:
        return False, "; ".join(problems)
    if not counts:
        return True, "no service expected to run"
    return True, ", ".join(counts) + " running"


# -- health -----------------------------------------------------------------------------
def health_of(container):
    """Health status of a running container with a healthcheck, else None."""
    state = container.get("State") or {}
    health = state.get("Health")
    if not health or not (state.get("Running") or state.get("Restarting")):
        return None
    return health.get("Status") or "unknown"


def health_decision(containers):
    """``(done, passed, detail)`` for one look at the containers.

    Done when every running container with a healthcheck is healthy (or there is none);
    otherwise the caller polls again until its timeout passes and then reports ``detail``.
    Containers that are not running are the running check's business.
    """
    states = sorted((container_name(c), health_of(c)) for c in containers if health_of(c) is not None)
    if not states:
        return True, True, "no running container has a healthcheck"
    bad = [(name, status) for name, status in states if status != "healthy"]
    if not bad:
        return True, True, "healthy: " + ", ".join(name for name, _status in states)
    return False, False, ", ".join("%s is %s" % (name, status) for name, status in bad)


def wait_for_health(poll, timeout, clock, sleep, interval=1.0):
    """Poll ``poll()`` (returns the containers) until health_decision is done or ``timeout``
    seconds passed. Returns ``(passed, detail, containers)`` of the last look."""
    deadline = clock() + timeout
    while True:
        containers = poll()
        done, passed, detail = health_decision(containers)
        remaining = deadline - clock()
        if done:
            return passed, detail, containers
        if remaining <= 0:
            return False, "%s after %ss" % (detail, timeout), containers
        sleep(min(interval, remaining))


# -- restarts ---------------------------------------------------------------------------
def restart_problem(container, since, now, window):
    """Why this container counts as crash looping, or None.

    Restarting now always counts. Otherwise a container whose RestartCount is zero never
    restarted. With ``since`` (a datetime), a container that restarted counts when its last
    start (StartedAt) is at or after ``since``; without it, when that start is less than
    ``window`` seconds before ``now``.
    """
    state = container.get("State") or {}
    count = int(container.get("RestartCount") or 0)
    if state.get("Restarting"):
        return "restarting (%d restarts)" % count
    if count == 0:
        return None
    started = parse_time(state.get("StartedAt"))
    if started is None:
        return None
    if since is not None:
        if started >= since:
            return "%d restarts, last start %s is after %s" % (count, state.get("StartedAt"), since.isoformat())
        return None
    age = (now - started).total_seconds()
    if age < window:
        return "%d restarts, last start %ds ago" % (count, max(age, 0))
    return None


def check_restarts(containers, since, now, window):
    problems = []
    for container in sorted(containers, key=container_name):
        problem = restart_problem(container, since, now, window)
        if problem:
            problems.append("%s: %s" % (container_name(container), problem))
    if problems:
        return False, "; ".join(problems)
    if since is not None:
        return True, "no restarts since %s" % since.isoformat()
    return True, "no restarts in the last %ss" % window


# -- logs -------------------------------------------------------------------------------
def error_lines(text, errors, allows):
    """Lines of ``text`` that match an error pattern and no allow pattern."""
    found = []
    for line in (text or "").splitlines():
        if any(p.search(line) for p in errors) and not any(p.search(line) for p in allows):
            found.append(line.strip())
    return found


def log_since(container, since):
    """What to pass to ``docker logs --since``: ``since`` or the container's last start."""
    if since:
        return since
    started = (container.get("State") or {}).get("StartedAt")
    return started if parse_time(started) is not None else None


def check_logs(found):
    """``found`` maps container name to its error lines."""
    bad = dict((name, lines) for name, lines in found.items() if lines)
    if not bad:
        return True, "no error lines in %d container logs" % len(found)
    parts = []
    for name in sorted(bad):
        lines = bad[name]
        shown = "; ".join(repr(line) for line in lines[:LOG_LINES_SHOWN])
        more = " and %d more" % (len(lines) - LOG_LINES_SHOWN) if len(lines) > LOG_LINES_SHOWN else ""
        parts.append("%s: %d error line%s: %s%s" % (name, len(lines), "" if len(lines) == 1 else "s", shown, more))
    return False, "; ".join(parts)


# -- http -------------------------------------------------------------------------------
def json_lookup(data, path):
    """The value at a dotted path (``version``, ``a.b``, ``items.0.id``), or MISSING."""
    value = data
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and re.match(r"^-?\d+$", part) and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def same_value(actual, expected):
    """Equal, or equal as text (so 1 matches "1" and true matches "true")."""
    if actual == expected and type(actual) is type(expected):
        return True
    return as_text(actual) == as_text(expected)


def as_text(value):
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _short(body):
    body = body.strip().replace("\n", " ")
    return body if len(body) <= BODY_SHOWN else body[:BODY_SHOWN] + "..."


def check_http(expect, status, body):
    """Does an answer (``status``, ``body`` text) meet the expectation (status, body_regex,
    json_field/json_value)? ``status`` None means no answer; then ``body`` says why."""
    if status is None:
        return False, "no answer: %s" % body
    want = expect.get("status") or 200
    if status != want:
        return False, "status %s, expected %s (body: %r)" % (status, want, _short(body))
    said = ["status %s" % status]
    regex = expect.get("body_regex")
    if regex:
        if not re.search(regex, body, re.MULTILINE):
            return False, "body does not match %r (body: %r)" % (regex, _short(body))
        said.append("body matches %r" % regex)
    field = expect.get("json_field")
    if field:
        try:
            data = json.loads(body)
        except ValueError:
            return False, "body is not JSON (body: %r)" % _short(body)
        value = json_lookup(data, field)
        if value is MISSING:
            return False, "JSON field %r missing (body: %r)" % (field, _short(body))
        wanted = expect.get("json_value")
        if wanted is not None and not same_value(value, wanted):
            return False, "JSON field %r is %s, expected %s" % (field, as_text(value), as_text(wanted))
        said.append("%s = %s" % (field, as_text(value)))
    return True, ", ".join(said)


# -- integrity --------------------------------------------------------------------------
def command_output(out, strip=True):
    return out.strip() if strip else out


def check_integrity(output, expected=None, baseline=MISSING, capture=False):
    """Compare a command's output with ``expected`` and/or a ``baseline`` (pass MISSING
    when the check does not compare to one). With ``capture`` nothing is compared."""
    if capture:
        return True, "captured baseline %r" % output
    problems = []
    said = []
    if expected is not None:
        if output != expected:
            problems.append("output %r, expected %r" % (output, expected))
        else:
            said.append("output %r as expected" % output)
    if baseline is not MISSING:
        if baseline is None:
            problems.append("no baseline to compare output %r with" % output)
        elif output != baseline:
            problems.append("output %r differs from baseline %r" % (output, baseline))
        else:
            said.append("output %r matches the baseline" % output)
    if problems:
        return False, "; ".join(problems)
    return True, "; ".join(said) or "output %r (nothing to compare with)" % output


def integrity_target(containers, service):
    """The running container (first by name) of ``service`` to run the command in, or None."""
    candidates = sorted((c for c in containers if service_of(c) == service and is_running(c)), key=container_name)
    return candidates[0] if candidates else None


# -- result -----------------------------------------------------------------------------
def check_record(name, kind, passed, detail, duration):
    return dict(name=name, kind=kind, passed=bool(passed), detail=detail, duration_s=round(duration, 3))


def unique_name(name, taken):
    """``name``, or ``name (2)``, ``name (3)``... when already taken."""
    if name not in taken:
        return name
    number = 2
    while "%s (%d)" % (name, number) in taken:
        number += 1
    return "%s (%d)" % (name, number)


def summary_lines(checks):
    """One readable line per check: ``PASS name - detail (0.12 s)``."""
    return ["%s %s - %s (%.2f s)" % ("PASS" if c["passed"] else "FAIL", c["name"], c["detail"], c["duration_s"])
            for c in checks]


def failure_message(project_name, checks):
    """One message naming every failing check with its detail (empty when all passed)."""
    failed = [c for c in checks if not c["passed"]]
    if not failed:
        return ""
    return "Verification of Compose project %s failed: %d of %d checks failed: %s" % (
        project_name, len(failed), len(checks), "; ".join("[%s] %s" % (c["name"], c["detail"]) for c in failed))
