# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Docker and Compose v2 CLI, as the collection's modules use it.

Every call is an argv list through ``module.run_command``: no shell, nothing interpolated.
The CLI (rather than the Engine API) keeps the managed host free of Python dependencies and
resolves a Compose project exactly as ``docker compose`` itself does.
"""

from __future__ import annotations

import json
import os
import time

COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
COMPOSE_ONEOFF_LABEL = "com.docker.compose.oneoff"

# What the docker CLI says when it cannot reach the Engine (stopped, restarting, wrong socket).
_DAEMON_UNREACHABLE = ("Cannot connect to the Docker daemon", "Is the docker daemon running", "error during connect")


def daemon_unreachable(text):
    """Whether a docker command's output says the Engine did not answer."""
    return any(marker in (text or "") for marker in _DAEMON_UNREACHABLE)


def compose_project_argument_spec():
    """Options shared by every module that works on one Compose project (doc fragment
    ``ops.rollback.compose_project`` documents them)."""
    return dict(
        project_dir=dict(type="path", required=True),
        project_name=dict(type="str", required=True),
        files=dict(type="list", elements="path", default=[]),
    )


def fail_unless_project_dir(module, **result):
    """Fail, before anything is read or changed, when project_dir is not a directory on this
    host; ``project_dir_missing`` lets a role say it in terms of its own variable."""
    path = module.params["project_dir"]
    if not os.path.isdir(path):
        module.fail_json(msg="project_dir: %s is not a directory" % path, project_dir_missing=True, **result)


class DockerCliError(Exception):
    """A docker command failed; the message names the command and what it said."""

    def __init__(self, what, argv, rc, stderr):
        self.argv = argv
        self.rc = rc
        self.stderr = (stderr or "").strip()
        super().__init__("%s failed (rc=%s, command: %s): %s" % (what, rc, " ".join(argv), self.stderr))


class DockerCli:
    """Thin wrapper over the docker CLI for one Compose project."""

    def __init__(self, module, project_dir=None, project_name=None, files=None):
        self.module = module
        self.docker = module.get_bin_path("docker", required=True)
        self.project_dir = project_dir
        self.project_name = project_name
        self.files = list(files or [])

    # -- plumbing ---------------------------------------------------------------------
    def run(self, what, args, data=None, check=True):
        argv = [self.docker] + list(args)
        rc, out, err = self.module.run_command(argv, data=data, binary_data=data is not None)
        if check and rc != 0:
            raise DockerCliError(what, argv, rc, err or out)
        return rc, out, err

    def wait_for_daemon(self, timeout, interval=1.0):
        """Wait up to timeout seconds for the Engine to answer (a recovery right after dockerd
        restarted); returns the seconds waited, raises DockerCliError when it never answers."""
        started = time.monotonic()
        while True:
            rc, out, err = self.run("Waiting for the Docker daemon", ["version", "--format", "{{.Server.Version}}"], check=False)
            waited = time.monotonic() - started
            if rc == 0:
                return round(waited, 2)
            if waited + interval > timeout:
                raise DockerCliError("Waiting %ss for the Docker daemon" % timeout, [self.docker, "version"], rc, err or out)
            time.sleep(interval)

    def compose_args(self):
        args = ["compose", "--project-directory", self.project_dir, "--project-name", self.project_name]
        for path in self.files:
            # Compose reads relative --file paths from the working directory, not the project's.
            args += ["--file", path if os.path.isabs(path) else os.path.join(self.project_dir, path)]
        return args

    # -- compose ----------------------------------------------------------------------
    def compose_config(self):
        """The resolved compose config (``docker compose config --format json``) as a dict."""
        _rc, out, _err = self.run("Resolving the compose config of project %s in %s" % (self.project_name, self.project_dir),
                                  self.compose_args() + ["config", "--format", "json"])
        return json.loads(out)

    def compose(self, what, args):
        return self.run(what, self.compose_args() + list(args))

    # -- containers -------------------------------------------------------------------
    def project_containers(self):
        """Inspect data of every container of the project (running or not), one-off runs excluded."""
        _rc, out, _err = self.run("Listing the containers of project %s" % self.project_name,
                                  ["ps", "--all", "--quiet", "--no-trunc",
                                   "--filter", "label=%s=%s" % (COMPOSE_PROJECT_LABEL, self.project_name)])
        ids = out.split()
        containers = self.inspect(ids) if ids else []
        return [c for c in containers
                if (c.get("Config", {}).get("Labels") or {}).get(COMPOSE_ONEOFF_LABEL, "False") != "True"]

    def inspect(self, ids, kind="container"):
        if not ids:
            return []
        _rc, out, _err = self.run("Inspecting %s %s" % (kind, ", ".join(ids)), [kind, "inspect"] + list(ids))
        return json.loads(out)

    def logs(self, container_id, since=None):
        """The container's log since ``since`` (RFC 3339 or Go duration), stdout and stderr."""
        args = ["logs"]
        if since:
            args += ["--since", since]
        _rc, out, err = self.run("Reading the log of container %s" % container_id, args + [container_id])
        return out + err

    def exec_in(self, container_id, argv, user=None):
        """Run argv in a running container; returns (rc, stdout, stderr) without raising."""
        args = ["exec"]
        if user:
            args += ["--user", user]
        return self.run("Running %s in container %s" % (argv, container_id), args + [container_id] + list(argv), check=False)


def service_of(container):
    """The Compose service a container belongs to."""
    return (container.get("Config", {}).get("Labels") or {}).get(COMPOSE_SERVICE_LABEL)


def container_name(container):
    return container.get("Name", "").lstrip("/")
