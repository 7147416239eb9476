#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: netlify_deploy_info
short_description: List the deploys of a Netlify site
version_added: 0.1.0
description:
  - Lists the deploys of a Netlify site, newest first, with the fields an operator needs to choose a rollback
    target, and returns the deploy the site publishes now.
  - Follows the API's pagination until O(limit) deploys are read.
author:
  - ops.rollback maintainers (@ops-rollback)
extends_documentation_fragment:
  - ops.rollback.netlify
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target.
    support: full
    details:
      - This module only reads.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: N/A
    details:
      - This module only reads.
  idempotent:
    description: When run twice in a row outside check mode, with the same arguments, the second run indicates no change.
    support: full
    details:
      - This module only reads.
options:
  site_id:
    description:
      - The site's ID, or one of its domains (for example V(example.netlify.app) or a custom domain).
    type: str
    required: true
  state:
    description:
      - Only list deploys in this state.
    type: str
    choices: [new, pending_review, accepted, rejected, enqueued, building, uploading, uploaded, preparing, prepared,
              processing, processed, ready, error, retrying]
  branch:
    description:
      - Only list deploys of this Git branch.
    type: str
  production:
    description:
      - If V(true), only list deploys of the production context. If V(false), list deploys of every context.
    type: bool
    default: false
  limit:
    description:
      - Read at most this many deploys. V(0) reads the whole history, page by page.
    type: int
    default: 20
seealso:
  - module: ops.rollback.netlify_deploy_restore
  - name: Netlify API, listSiteDeploys
    description: The API operation this module calls.
    link: https://open-api.netlify.com/#tag/deploy/operation/listSiteDeploys
"""

EXAMPLES = r"""
---
- name: List the last ten production deploys (the token comes from NETLIFY_AUTH_TOKEN)
  ops.rollback.netlify_deploy_info:
    site_id: example.netlify.app
    production: true
    limit: 10
  register: deploys

- name: Show what is published now
  ansible.builtin.debug:
    msg: "{{ deploys.published_deploy.id }} from commit {{ deploys.published_deploy.commit_ref }}"

- name: Find failed deploys of the main branch
  ops.rollback.netlify_deploy_info:
    site_id: 3f1a7c52-9b1e-4c7d-8a2f-6d5e4b3c2a10
    state: error
    branch: main
    limit: 0
"""

RETURN = r"""
deploys:
  description: The deploys, newest first.
  returned: success
  type: list
  elements: dict
  contains:
    id:
      description: Deploy ID.
      type: str
      sample: 6650f1c2e00000000000000b
    site_id:
      description: ID of the site the deploy belongs to.
      type: str
      sample: 3f1a7c52-9b1e-4c7d-8a2f-6d5e4b3c2a10
    state:
      description: Deploy state, for example V(ready), V(error) or V(building).
      type: str
      sample: ready
    context:
      description: Build context, for example V(production), V(deploy-preview) or V(branch-deploy).
      type: str
      sample: production
    branch:
      description: Git branch the deploy was built from.
      type: str
      sample: main
    commit_ref:
      description: Git commit the deploy was built from.
      type: str
      sample: 594fd1615a341c77829e83ed988f137e1ba96231
    title:
      description: Deploy title, usually the commit message.
      type: str
      sample: Fix header contrast
    created_at:
      description: When the deploy was created (ISO 8601, UTC).
      type: str
      sample: "2024-06-19T09:00:00.000Z"
    published_at:
      description: When the deploy was last published, or V(null) if it never was.
      type: str
      sample: "2024-06-19T09:02:10.000Z"
    locked:
      description: Whether the deploy is locked, which stops auto publishing while it is published.
      type: bool
      sample: false
    skipped:
      description: Whether the build was skipped.
      type: bool
      sample: false
    draft:
      description: Whether this is a draft deploy.
      type: bool
      sample: false
    deploy_url:
      description: The deploy's own URL.
      type: str
      sample: http://6650f1c2e00000000000000b--example.netlify.app
published_deploy:
  description:
    - The deploy the site publishes now, with the same fields as each item of RV(deploys).
    - V(null) if the site has never been published.
  returned: success
  type: dict
  sample:
    id: 6650f1c2e00000000000000e
    state: ready
    context: production
    branch: main
    commit_ref: 00317b5e81771fa2c4f1ccbe161dfb1c492dde59
    title: Add pricing page
    locked: false
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
  sample: 2
"""

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ops.rollback.plugins.module_utils._netlify import (
    DEPLOY_STATES,
    NetlifyError,
    client_from_module,
    netlify_argument_spec,
)
from ansible_collections.ops.rollback.plugins.module_utils._netlify_targets import (
    TargetError,
    check_selectors,
    summarize_deploy,
)


def site_summary(site):
    return {key: site.get(key) for key in ("id", "name", "url", "ssl_url")}


def list_deploys(module, client):
    """Read the site and its deploys; return the module result."""
    params = module.params
    site_id = params["site_id"]
    if params["limit"] < 0:
        module.fail_json(msg="limit must be 0 (all) or more, got %d" % params["limit"])
    try:
        check_selectors(site_id)
    except TargetError as exc:
        module.fail_json(msg="Invalid input: %s. Nothing was asked." % exc)
    action = "Reading site %s" % site_id
    try:
        site = client.get_site(site_id)
        action = "Listing the deploys of site %s" % site_id
        deploys = [summarize_deploy(d) for d in client.iter_site_deploys(
            site["id"], state=params["state"], branch=params["branch"],
            production=True if params["production"] else None, limit=params["limit"] or None)]
    except NetlifyError as exc:
        module.fail_json(msg="%s failed: %s" % (action, exc), api_calls=client.calls,
                         exception=traceback.format_exc())
    return dict(
        changed=False,
        deploys=deploys,
        published_deploy=summarize_deploy(site.get("published_deploy")),
        site=site_summary(site),
        api_calls=client.calls,
    )


def main():
    argument_spec = netlify_argument_spec()
    argument_spec.update(
        site_id=dict(type="str", required=True),
        state=dict(type="str", choices=DEPLOY_STATES),
        branch=dict(type="str"),
        production=dict(type="bool", default=False),
        limit=dict(type="int", default=20),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    client = client_from_module(module)
    module.exit_json(**list_deploys(module, client))


if __name__ == "__main__":
    main()
