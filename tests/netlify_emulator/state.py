# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The emulator's world: sites, their deploys, which deploy each site publishes, and locks.

Deploys are kept newest first, like the API lists them. All methods take the lock, so the
threaded server can call them from any request thread.
"""
from __future__ import annotations

import copy
import datetime
import json
import os
import secrets
import threading

FIXTURE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixture.json")


class ApiError(Exception):
    """An error the API itself would answer (404, 422, ...), in Netlify's error shape."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class NetlifyState:
    def __init__(self, fixture_path=FIXTURE_PATH):
        self.fixture_path = fixture_path
        self.lock = threading.RLock()
        self.base_url = ""
        self.reset()

    def reset(self):
        with open(self.fixture_path, encoding="utf-8") as handle:
            fixture = json.load(handle)
        with self.lock:
            self.sites = {}
            self.deploys = {}
            for site in fixture["sites"]:
                record = {k: v for k, v in site.items() if k != "deploys"}
                record["deploy_ids"] = []
                for deploy in site["deploys"]:
                    deploy = dict(deploy, site_id=site["id"])
                    for flag in ("locked", "skipped", "draft"):
                        deploy.setdefault(flag, False)
                    self.deploys[deploy["id"]] = deploy
                    record["deploy_ids"].append(deploy["id"])
                self.sites[site["id"]] = record

    # -- lookups -------------------------------------------------------------------------

    def find_site(self, site_id):
        """A site by ID, by <name>.netlify.app, or by custom domain / alias (as the API allows)."""
        with self.lock:
            wanted = site_id.lower()
            for site in self.sites.values():
                names = {site["id"], site["name"] + ".netlify.app", site.get("custom_domain") or ""}
                names.update(site.get("domain_aliases", []))
                if wanted in {n.lower() for n in names if n}:
                    return site
        raise ApiError(404, "Not Found")

    def find_site_by_name(self, name):
        with self.lock:
            for site in self.sites.values():
                if site["name"] == name:
                    return site
        raise ApiError(404, "Not Found")

    def find_deploy(self, deploy_id):
        with self.lock:
            if deploy_id not in self.deploys:
                raise ApiError(404, "Not Found")
            return self.deploys[deploy_id]

    def site_deploys(self, site):
        with self.lock:
            return [self.deploys[i] for i in site["deploy_ids"]]

    # -- rendering in the API's shape ------------------------------------------------------

    def site_url(self, site):
        if self.base_url:
            return "%s/_sites/%s/" % (self.base_url, site["name"])
        return "https://%s.netlify.app" % site["name"]

    def deploy_json(self, deploy):
        with self.lock:
            site = self.sites[deploy["site_id"]]
            name = site["name"]
            out = {
                "id": deploy["id"],
                "site_id": deploy["site_id"],
                "build_id": deploy.get("build_id", "b" + deploy["id"][1:]),
                "user_id": site.get("user_id", "5c9f2d1e0a1b2c3d4e5f6a7b"),
                "state": deploy["state"],
                "name": name,
                "url": "http://%s.netlify.app" % name,
                "ssl_url": "https://%s.netlify.app" % name,
                "admin_url": "https://app.netlify.com/sites/%s" % name,
                "deploy_url": "http://%s--%s.netlify.app" % (deploy["id"], name),
                "deploy_ssl_url": "https://%s--%s.netlify.app" % (deploy["id"], name),
                "branch": deploy.get("branch", ""),
                "commit_ref": deploy.get("commit_ref") or "",
                "title": deploy.get("title") or "",
                "context": deploy.get("context", "production"),
                "locked": bool(deploy["locked"]),
                "skipped": bool(deploy["skipped"]),
                "draft": bool(deploy["draft"]),
                "created_at": deploy["created_at"],
                "updated_at": deploy.get("updated_at") or deploy["created_at"],
                "required": [],
                "required_functions": [],
                "framework": "astro",
            }
            if deploy.get("commit_ref"):
                out["commit_url"] = "%s/commit/%s" % (site.get("repo_url", "https://github.com/example/site"),
                                                      deploy["commit_ref"])
            if deploy.get("published_at"):
                out["published_at"] = deploy["published_at"]
            if deploy.get("error_message"):
                out["error_message"] = deploy["error_message"]
            return out

    def site_json(self, site):
        with self.lock:
            out = {
                "id": site["id"],
                "name": site["name"],
                "state": "current",
                "plan": "nf_team_dev",
                "url": self.site_url(site),
                "ssl_url": self.site_url(site),
                "admin_url": "https://app.netlify.com/sites/%s" % site["name"],
                "custom_domain": site.get("custom_domain") or "",
                "domain_aliases": list(site.get("domain_aliases", [])),
                "created_at": site.get("created_at", "2023-01-01T00:00:00.000Z"),
                "updated_at": site.get("updated_at", "2023-01-01T00:00:00.000Z"),
                "ssl": True,
                "force_ssl": True,
                "managed_dns": True,
            }
            published = site.get("published_deploy")
            if published:
                out["published_deploy"] = self.deploy_json(self.deploys[published])
                out["deploy_url"] = out["published_deploy"]["deploy_url"]
            return out

    # -- mutations -------------------------------------------------------------------------

    def restore(self, site, deploy_id, effect=True):
        """POST /sites/{site_id}/deploys/{deploy_id}/restore: publish an earlier deploy."""
        with self.lock:
            deploy = self.deploys.get(deploy_id)
            if deploy is None or deploy["site_id"] != site["id"]:
                raise ApiError(404, "Not Found")
            if deploy["state"] != "ready" or deploy["skipped"]:
                raise ApiError(422, "Deploy %s is %s and cannot be published" % (deploy_id, deploy["state"]))
            if effect:
                now = utc_now()
                deploy["published_at"] = now
                deploy["updated_at"] = now
                site["published_deploy"] = deploy_id
            return deploy

    def set_locked(self, deploy_id, locked):
        with self.lock:
            deploy = self.find_deploy(deploy_id)
            deploy["locked"] = locked
            deploy["updated_at"] = utc_now()
            return deploy

    def push(self, site, commit_ref=None, title="Push", branch="main", state="ready", context="production"):
        """What a git push does: a new deploy, auto-published unless the published deploy is locked."""
        with self.lock:
            now = utc_now()
            deploy = {
                "id": secrets.token_hex(12),
                "site_id": site["id"],
                "state": state,
                "context": context,
                "branch": branch,
                "commit_ref": commit_ref or secrets.token_hex(20),
                "title": title,
                "created_at": now,
                "updated_at": now,
                "locked": False,
                "skipped": False,
                "draft": False,
            }
            self.deploys[deploy["id"]] = deploy
            site["deploy_ids"].insert(0, deploy["id"])
            published = self.deploys.get(site.get("published_deploy") or "")
            auto_publish_locked = bool(published and published["locked"])
            if state == "ready" and context == "production" and not auto_publish_locked:
                deploy["published_at"] = now
                site["published_deploy"] = deploy["id"]
            return deploy, auto_publish_locked

    def snapshot(self):
        """The state tests read back: per site, the published deploy and every deploy's flags."""
        with self.lock:
            return {
                "sites": {
                    site["id"]: {
                        "name": site["name"],
                        "published_deploy": site.get("published_deploy"),
                        "deploys": [copy.deepcopy(self.deploys[i]) for i in site["deploy_ids"]],
                    }
                    for site in self.sites.values()
                },
            }
