# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Which Netlify deploy a rollback publishes, and what that changes. Pure functions, no I/O.

Deploy histories are iterables of API deploy objects, newest first (as listSiteDeploys
returns them); they are consumed lazily so that a steps_back lookup stops paging early.
"""

from __future__ import annotations

import re

DEPLOY_FIELDS = (
    "id", "site_id", "state", "context", "branch", "commit_ref", "title", "created_at",
    "published_at", "locked", "skipped", "draft", "deploy_url",
)
DIFF_FIELDS = ("id", "commit_ref", "title", "branch", "locked")
MIN_COMMIT_PREFIX = 7
# Checked before any request: each becomes one segment of an API path, or a prefix compared with commit SHAs.
SITE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")   # a site ID (UUID) or a domain
DEPLOY_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")               # Netlify deploy IDs are 24 hex digits
COMMIT_REF_RE = re.compile(r"^[0-9A-Fa-f]{1,64}$")                 # a commit SHA or a prefix of one
MAX_STEPS_BACK = 10000


class TargetError(Exception):
    """The requested target cannot be used; the message says why."""


def _shown(value, limit=80):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "... (%d characters)" % len(value)


def check_selectors(site_id, deploy_id=None, commit_ref=None, steps_back=None):
    """Raise TargetError naming the first option whose value can't be right; nothing is asked yet."""
    if not SITE_ID_RE.match(site_id or "") or ".." in site_id:
        raise TargetError("site_id=%s is not a site ID or domain (letters, digits, '.', '_' and '-', no '..')"
                          % _shown(site_id))
    if deploy_id is not None and not DEPLOY_ID_RE.match(deploy_id):
        raise TargetError("deploy_id=%s is not a deploy ID (letters, digits, '_' and '-', at most 64)" % _shown(deploy_id))
    if commit_ref is not None and not COMMIT_REF_RE.match(commit_ref):
        raise TargetError("commit_ref=%s is not a commit SHA or a prefix of one (hex digits)" % _shown(commit_ref))
    if steps_back is not None and not 1 <= steps_back <= MAX_STEPS_BACK:
        raise TargetError("steps_back must be from 1 to %d, got %d" % (MAX_STEPS_BACK, steps_back))


def summarize_deploy(deploy):
    """The fields an operator needs, from an API deploy object (None stays None)."""
    if not deploy:
        return None
    out = {}
    for field in DEPLOY_FIELDS:
        value = deploy.get(field)
        if field in ("locked", "skipped", "draft"):
            value = bool(value)
        out[field] = value
    return out


def describe(deploy):
    """A short human label: id (commit, branch, "title")."""
    commit = (deploy.get("commit_ref") or "no commit")[:MIN_COMMIT_PREFIX]
    return '%s (commit %s, branch %s, "%s")' % (
        deploy.get("id"), commit, deploy.get("branch") or "-", deploy.get("title") or "")


def unusable_reason(deploy):
    """Why a deploy cannot be published again, or None when it can."""
    if deploy.get("skipped") or deploy.get("state") == "skipped":
        return "it was skipped (no build output)"
    if deploy.get("state") != "ready":
        return "its state is %s, not ready" % deploy.get("state")
    if deploy.get("draft"):
        return "it is a draft deploy"
    return None


def is_candidate(deploy):
    """A deploy that automatic selection may choose: a ready production deploy."""
    return deploy.get("context") == "production" and unusable_reason(deploy) is None


def select_by_steps_back(deploys, published_id, steps_back):
    """The Nth ready production deploy before the published one."""
    if steps_back < 1:
        raise TargetError("steps_back must be 1 or more, got %d" % steps_back)
    if not published_id:
        raise TargetError("the site has no published deploy to step back from")
    passed = False
    found = 0
    for deploy in deploys:
        if not passed:
            passed = deploy.get("id") == published_id
            continue
        if is_candidate(deploy):
            found += 1
            if found == steps_back:
                return deploy
    if not passed:
        raise TargetError("the published deploy %s is not in the site's deploy history" % published_id)
    raise TargetError("steps_back=%d, but there %s only %d ready production deploy%s before the published "
                      "deploy %s" % (steps_back, "is" if found == 1 else "are", found,
                                     "" if found == 1 else "s", published_id))


def select_by_commit(deploys, commit_ref, published_id=None):
    """The ready production deploy of the one commit that starts with `commit_ref`.

    The prefix must have at least 7 characters and match a single commit. When that commit
    was deployed more than once, the published deploy wins, then the newest.
    """
    prefix = (commit_ref or "").strip().lower()
    if len(prefix) < MIN_COMMIT_PREFIX:
        raise TargetError("commit_ref %r is too short: give at least %d characters" % (commit_ref, MIN_COMMIT_PREFIX))
    matches = [d for d in deploys if (d.get("commit_ref") or "").lower().startswith(prefix)]
    if not matches:
        raise TargetError("no deploy of this site has a commit starting with %s" % prefix)
    commits = sorted({d["commit_ref"].lower() for d in matches})
    if len(commits) > 1:
        raise TargetError("commit_ref %s is ambiguous: it matches commits %s; give more characters"
                          % (prefix, ", ".join(commits)))
    usable = [d for d in matches if is_candidate(d)]
    if not usable:
        seen = ", ".join("%s (%s, %s)" % (d.get("id"), d.get("context"), unusable_reason(d) or "usable")
                         for d in matches)
        raise TargetError("commit %s has no ready production deploy: %s" % (commits[0], seen))
    for deploy in usable:
        if deploy.get("id") == published_id:
            return deploy
    return usable[0]


def check_target(deploy, site_id):
    """Refuse a target of another site or one that cannot be published; return warnings."""
    if deploy.get("site_id") != site_id:
        raise TargetError("deploy %s belongs to site %s, not to site %s"
                          % (deploy.get("id"), deploy.get("site_id"), site_id))
    reason = unusable_reason(deploy)
    if reason:
        raise TargetError("deploy %s cannot be published: %s" % (deploy.get("id"), reason))
    warnings = []
    if deploy.get("context") != "production":
        warnings.append("deploy %s was built for the %s context, not production; it is published as it is"
                        % (deploy.get("id"), deploy.get("context")))
    return warnings


def reverted_deploys(deploys, published_id, target_id):
    """The ready production deploys a rollback takes off: from the published one down to the target.

    Empty when the target is the published deploy or newer than it (a roll forward).
    """
    if not published_id or published_id == target_id:
        return []
    collecting = False
    out = []
    for deploy in deploys:
        if deploy.get("id") == target_id:
            return out
        if deploy.get("id") == published_id:
            collecting = True
        if collecting and (deploy.get("id") == published_id or is_candidate(deploy)):
            out.append(deploy)
    return out


def direction(published, target):
    """'none', 'back' (target older than the published deploy) or 'forward'."""
    if published is None:
        return "forward"
    if published.get("id") == target.get("id"):
        return "none"
    return "back" if (target.get("created_at") or "") < (published.get("created_at") or "") else "forward"


def restore_plan(published, target, lock):
    """What has to be written: {'restore': bool, 'lock': bool}."""
    restore = published is None or published.get("id") != target.get("id")
    return {"restore": restore, "lock": bool(lock) and not target.get("locked")}


def published_view(deploy, locked=None):
    """The published deploy as the diff shows it."""
    if not deploy:
        return {field: None for field in DIFF_FIELDS}
    view = {field: deploy.get(field) for field in DIFF_FIELDS}
    view["locked"] = bool(deploy.get("locked") if locked is None else locked)
    return view


class Replay:
    """An iterator that can be iterated again: replays what it fetched, then fetches more."""

    def __init__(self, iterable):
        self._source = iter(iterable)
        self._seen = []

    def __iter__(self):
        index = 0
        while True:
            if index < len(self._seen):
                yield self._seen[index]
            else:
                try:
                    item = next(self._source)
                except StopIteration:
                    return
                self._seen.append(item)
                yield item
            index += 1
