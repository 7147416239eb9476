#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: netlify_deploy_restore
short_description: Publish an earlier deploy of a Netlify site again (rollback)
version_added: 0.1.0
description:
  - Publishes an earlier deploy of a Netlify site again, locks it so that the next Git push does not undo the
    rollback, and checks that the API then reports it as the published deploy.
  - The target is O(deploy_id), a O(commit_ref) prefix, or the O(steps_back)th ready production deploy
    before the one published now. Skipped, failed and draft deploys are never chosen.
  - Before anything is written the target must belong to the site and be in state V(ready).
  - "The API calls made are C(POST /sites/{site_id}/deploys/{deploy_id}/restore), then C(POST /deploys/{deploy_id}/lock),
    then C(GET /sites/{site_id}) to verify. Without O(plan) the run first reads the site, the target and the
    deploy list; with O(plan) it trusts the plan and makes only these three calls."
notes:
  - Netlify restores the deploy's files, redirects and functions. Environment variables, build settings and
    other site settings are not rolled back.
  - While the published deploy is locked, Netlify does not auto-publish new deploys. Unlock it in the Netlify UI
    (or with the API) when the fix is out.
author:
  - ops.rollback maintainers (@ops-rollback)
extends_documentation_fragment:
  - ops.rollback.netlify
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target.
    support: full
    details:
      - Check mode resolves and validates the target and reports what would be published, without writing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: full
    details:
      - The diff shows the published deploy before and after, with its commit, title, branch and lock.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second run indicates no change.
    support: partial
    details:
      - With O(deploy_id) or O(commit_ref) a second run finds the target published (and locked) and changes nothing.
      - O(steps_back) counts from the deploy published at the time of the run, so a second run goes back further.
        Use the C(id) of RV(deploy) from the first run to repeat it.
options:
  site_id:
    description:
      - The site's ID, or one of its domains (for example V(example.netlify.app) or a custom domain).
    type: str
    required: true
  deploy_id:
    description:
      - Publish this deploy.
      - Mutually exclusive with O(commit_ref) and O(steps_back).
    type: str
  commit_ref:
    description:
      - Publish the ready production deploy of this Git commit, given as a prefix of at least 7 characters that
        matches one commit only.
      - If the commit was deployed more than once, the published deploy wins, then the newest.
      - Mutually exclusive with O(deploy_id) and O(steps_back).
    type: str
  steps_back:
    description:
      - Publish the Nth ready production deploy before the one published now. V(1) is the previous good deploy.
      - Used when neither O(deploy_id) nor O(commit_ref) is given.
      - Mutually exclusive with O(deploy_id) and O(commit_ref).
    type: int
    default: 1
  lock:
    description:
      - Lock the published deploy after the restore, so that auto publishing cannot overwrite the rollback.
      - V(false) does not unlock a deploy that is locked already.
    type: bool
    default: true
  plan:
    description:
      - The registered result of a check-mode run of this module for the same site, made moments before (the
        plan that was shown and confirmed).
      - The run then publishes the plan's target without reading the site, the target and the deploy list
        again, so a confirmed rollback costs the plan's reads plus the writes and one verification read.
        The verification still fails the run if the site does not publish the target afterwards.
      - With O(deploy_id), it must be the plan's target. O(commit_ref) and O(steps_back) are ignored.
    type: dict
seealso:
  - module: ops.rollback.netlify_deploy_info
  - name: Netlify API, restoreSiteDeploy
    description: The API operation that publishes an earlier deploy.
    link: https://open-api.netlify.com/#tag/deploy/operation/restoreSiteDeploy
  - name: Netlify docs, rollbacks and locked deploys
    description: What a rollback does, and how auto publishing is locked.
    link: https://docs.netlify.com/site-deploys/manage-deploys/#rollbacks
"""

EXAMPLES = r"""
---
- name: Roll back to the previous good production deploy (the token comes from NETLIFY_AUTH_TOKEN)
  ops.rollback.netlify_deploy_restore:
    site_id: example.netlify.app
    steps_back: 1

- name: Publish the deploy of a given commit, without locking auto publishing
  ops.rollback.netlify_deploy_restore:
    site_id: 3f1a7c52-9b1e-4c7d-8a2f-6d5e4b3c2a10
    commit_ref: 594fd16
    lock: false

- name: Show what would be published (dry run)
  ops.rollback.netlify_deploy_restore:
    site_id: example.netlify.app
    deploy_id: 6650f1c2e00000000000000b
  check_mode: true
  diff: true
  register: plan

- name: Print the deploys the rollback takes off
  ansible.builtin.debug:
    msg: "{{ plan.reverted_deploys | map(attribute='title') | list }}"
"""

RETURN = r"""
deploy:
  description:
    - The target deploy, as it is published after the run (or would be, in check mode).
    - Has the same fields as the items of RV(ops.rollback.netlify_deploy_info#module:deploys).
  returned: success
  type: dict
  sample:
    id: 6650f1c2e00000000000000b
    state: ready
    context: production
    branch: main
    commit_ref: 594fd1615a341c77829e83ed988f137e1ba96231
    title: Fix header contrast
    locked: true
previous_deploy:
  description:
    - The deploy that was published before the run; the recovery point if the rollback has to be undone.
    - Same fields as RV(deploy). V(null) if the site had never been published.
  returned: success
  type: dict
  sample:
    id: 6650f1c2e00000000000000e
    commit_ref: 00317b5e81771fa2c4f1ccbe161dfb1c492dde59
    title: Add pricing page
    branch: main
    locked: false
reverted_deploys:
  description:
    - The ready production deploys that the rollback takes off, newest first, from the one published before the
      run down to the target (exclusive). Empty when nothing changes or the target is newer.
  returned: success
  type: list
  elements: dict
  sample:
    - id: 6650f1c2e00000000000000e
      commit_ref: 00317b5e81771fa2c4f1ccbe161dfb1c492dde59
      title: Add pricing page
      branch: main
writes:
  description: What the run writes (or would write, in check mode) - V(restore) the target, V(lock) it.
  returned: success
  type: dict
  sample:
    restore: true
    lock: true
direction:
  description: V(back) when the target is older than the deploy published before, V(forward) when newer, V(none) when it is the same.
  returned: success
  type: str
  sample: back
locked:
  description: Whether the target deploy is locked after the run (or would be, in check mode).
  returned: success
  type: bool
  sample: true
verified:
  description:
    - Whether the API was read back after writing and showed the target as the published deploy (and locked, if
      O(lock=true)). V(false) when nothing was written, and in check mode.
  returned: success
  type: bool
  sample: true
site:
  description: The site, as the API resolved O(site_id).
  returned: success
  type: dict
  contains:
    id:
      description: Site ID.
      type: str
      sample: 3f1a7c52-9b1e-4c7d-8a2f-6d5e4b3c2a10
    name:
      description: Site name.
      type: str
      sample: example
    url:
      description: The site's main URL.
      type: str
      sample: http://www.example.com
    ssl_url:
      description: The site's HTTPS URL.
      type: str
      sample: https://www.example.com
api_calls:
  description: Number of HTTP requests sent to the API, retries included.
  returned: always
  type: int
  sample: 5
retries:
  description: The requests that were retried, with the problem and the wait before the next attempt.
  returned: always
  type: list
  elements: dict
  sample:
    - method: POST
      path: /sites/3f1a7c52-9b1e-4c7d-8a2f-6d5e4b3c2a10/deploys/6650f1c2e00000000000000b/restore
      problem: HTTP 429 Rate limit exceeded
      delay: 1.0
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ops.rollback.plugins.module_utils._netlify import (
    NetlifyError,
    client_from_module,
    netlify_argument_spec,
)
from ansible_collections.ops.rollback.plugins.module_utils._netlify_targets import (
    Replay,
    TargetError,
    check_selectors,
    check_target,
    describe,
    direction,
    published_view,
    restore_plan,
    reverted_deploys,
    select_by_commit,
    select_by_steps_back,
    summarize_deploy,
)


class DeployRestorer:
    """Resolve the target, validate it, write only what differs, and verify."""

    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.params = module.params
        self.action = "Reading site %s" % self.params["site_id"]
        self.written = []
        self.writing = False

    def fail(self, msg, exc=None):
        if self.written:
            done = "Already done: %s." % "; ".join(self.written)
        elif self.writing:
            done = "The write request failed; check the site, it may have taken effect."
        else:
            done = "Nothing was changed."
        extra = {"exception": traceback.format_exc()} if exc is not None else {}
        self.module.fail_json(msg="%s %s" % (msg, done), api_calls=self.client.calls, retries=self.client.retries,
                              **extra)

    def run(self):
        params = self.params
        try:
            check_selectors(params["site_id"], params["deploy_id"], params["commit_ref"],
                            None if params["deploy_id"] or params["commit_ref"] else params["steps_back"])
        except TargetError as exc:
            self.fail("Invalid input: %s." % exc)
        try:
            return self._run()
        except NetlifyError as exc:
            self.fail("%s failed: %s." % (self.action, exc), exc)
        except TargetError as exc:
            self.fail("%s: %s." % (self.action, exc))

    def _run(self):
        params = self.params
        if params["plan"]:
            site, published, target, reverted, plan = self._confirmed_plan(params["plan"])
            site_id = site["id"]
        else:
            site = self.client.get_site(params["site_id"])
            site_id = site["id"]
            published = site.get("published_deploy") or None
            history = Replay(self._deploys(site_id))

            target = self._select(site_id, published, history)
            self.action = "Checking deploy %s of site %s" % (target.get("id"), site_id)
            for warning in check_target(target, site_id):
                self.module.warn(warning)
            published_id = published.get("id") if published else None
            self.action = "Listing the deploys of site %s" % site_id
            reverted = reverted_deploys(history, published_id, target["id"])
            plan = restore_plan(published, target, params["lock"])

        changed = plan["restore"] or plan["lock"]
        locked = bool(target.get("locked")) or plan["lock"]
        after = dict(target, locked=locked)
        verified = False
        if changed and not self.module.check_mode:
            after = self._write(site_id, target, plan)
            locked = after["locked"]
            verified = True

        result = dict(
            changed=changed,
            writes=plan,
            deploy=summarize_deploy(after),
            previous_deploy=summarize_deploy(published),
            reverted_deploys=[summarize_deploy(d) for d in reverted],
            direction=direction(published, target),
            locked=locked,
            verified=verified,
            site={key: site.get(key) for key in ("id", "name", "url", "ssl_url")},
            api_calls=self.client.calls,
            retries=self.client.retries,
        )
        if self.module._diff:
            result["diff"] = dict(
                before=published_view(published),
                after=published_view(after) if changed else published_view(published),
                before_header="published deploy of site %s" % site_id,
                after_header="published deploy of site %s" % site_id,
            )
        return result

    def _confirmed_plan(self, given):
        """(site, published, target, reverted, writes) from a check-mode result of this module."""
        self.action = "Reading the plan of the rollback of site %s" % self.params["site_id"]
        site, target = given.get("site") or {}, given.get("deploy") or {}
        writes = given.get("writes")
        if not site.get("id") or not target.get("id") or not isinstance(writes, dict):
            raise TargetError("plan must be the registered result of a check-mode run of this module "
                              "(with site, deploy and writes); got keys %s" % sorted(given))
        if self.params["deploy_id"] and self.params["deploy_id"] != target["id"]:
            raise TargetError("deploy_id %s is not the plan's target %s" % (self.params["deploy_id"], target["id"]))
        # The plan's deploy shows the lock it would have after the run; the lock to write is in writes.
        plan = {"restore": bool(writes.get("restore")), "lock": bool(writes.get("lock")) and bool(self.params["lock"])}
        target = dict(target, locked=bool(target.get("locked")) and not plan["lock"])
        return site, given.get("previous_deploy") or None, target, given.get("reverted_deploys") or [], plan

    def _deploys(self, site_id):
        """The site's deploys, newest first, fetched page by page as selection needs them."""
        return self.client.iter_site_deploys(site_id)

    def _select(self, site_id, published, history):
        params = self.params
        if params["deploy_id"]:
            self.action = "Reading deploy %s (deploy_id)" % params["deploy_id"]
            return self.client.get_deploy(params["deploy_id"])
        if params["commit_ref"]:
            self.action = "Choosing the deploy of commit %s of site %s" % (params["commit_ref"], site_id)
            return select_by_commit(history, params["commit_ref"], published.get("id") if published else None)
        self.action = "Choosing the deploy %d step(s) before the published one of site %s" % (
            params["steps_back"], site_id)
        return select_by_steps_back(history, published.get("id") if published else None, params["steps_back"])

    def _write(self, site_id, target, plan):
        deploy_id = target["id"]
        after = dict(target)
        self.writing = True
        if plan["restore"]:
            self.action = "Restoring deploy %s of site %s" % (deploy_id, site_id)
            after.update(self.client.restore_deploy(site_id, deploy_id) or {})
            self.written.append("restored deploy %s" % deploy_id)
        if plan["lock"]:
            self.action = "Locking deploy %s of site %s" % (deploy_id, site_id)
            after.update(self.client.lock_deploy(deploy_id) or {})
            self.written.append("locked deploy %s" % deploy_id)
        self.action = "Verifying that site %s publishes deploy %s" % (site_id, deploy_id)
        now = self.client.get_site(site_id).get("published_deploy") or {}
        if now.get("id") != deploy_id:
            raise TargetError("the API reports %s as published, not the restored deploy %s"
                              % (describe(now) if now else "no deploy", describe(target)))
        if plan["lock"] and not now.get("locked"):
            raise TargetError("deploy %s is published but not locked after the lock request" % deploy_id)
        after.update(now)
        return after


def main():
    argument_spec = netlify_argument_spec()
    argument_spec.update(
        site_id=dict(type="str", required=True),
        deploy_id=dict(type="str"),
        commit_ref=dict(type="str"),
        steps_back=dict(type="int", default=1),
        lock=dict(type="bool", default=True),
        plan=dict(type="dict"),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=[("deploy_id", "commit_ref", "steps_back")],
        supports_check_mode=True,
    )
    client = client_from_module(module)
    module.exit_json(**DeployRestorer(module, client).run())


if __name__ == "__main__":
    main()
