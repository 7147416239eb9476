#!/usr/bin/python
# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: blue_green_color
short_description: Start or stop one color of a blue-green Compose stack
version_added: 0.1.0
description:
  - A blue-green stack runs its stateful services in the shared Compose project O(project_name)
    and its switchable services twice, in the color projects C(<project_name>-blue) and
    C(<project_name>-green), each on its own host ports.
  - With O(state=started), starts the release O(release_id) in the color O(color). The color
    project is generated from the release's resolved config (stored by
    M(ops.rollback.release_record)) - only the switchable services, published on the color's
    ports, joined to the shared project's network (which must exist), with the release's images
    (its keep tags when a tag moved). Named volumes keep their resolved names, so both colors
    share the shared project's data.
  - With O(state=stopped), removes the color project's containers (its volumes stay).
  - The generated compose file is C(<state_dir>/<project_name>/colors/<color>/compose.json),
    mode 0600 (it holds the C(.env)'s values).
extends_documentation_fragment:
  - ops.rollback.attributes
  - ops.rollback.state
options:
  project_name:
    description: The stack (the shared Compose project's name).
    type: str
    required: true
  color:
    description: The color to start or stop.
    type: str
    required: true
    choices: [blue, green]
  state:
    description: Whether the color should run the release or not run at all.
    type: str
    default: started
    choices: [started, stopped]
  release_id:
    description: The release to run (see M(ops.rollback.release_info)). Required with O(state=started).
    type: str
  services:
    description: The switchable services and their ports.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The Compose service.
        type: str
        required: true
      container_port:
        description: The port the service listens on in its container.
        type: int
        required: true
      blue_port:
        description: Host port of the service in the blue color.
        type: int
        required: true
      green_port:
        description: Host port of the service in the green color.
        type: int
        required: true
      bind_ip:
        description: Host address the ports are published on.
        type: str
        default: 127.0.0.1
  network:
    description:
      - The shared network the colors join. By default the release's default network
        (C(<project_name>_default)).
    type: str
  wait_timeout:
    description: Seconds to wait for the color's services to be running and healthy.
    type: int
    default: 120
  intent:
    description:
      - With O(state=started), what the caller is doing (for example C(from), C(to) and
        C(rollback_id) of a rollback). It is written to the ledger as C(in_progress) before
        anything changes, so that a run killed in the middle (after the proxy was switched, say)
        is resumed and recorded by the next one instead of being taken for a stack that already
        runs the target. M(ops.rollback.rollback_record) clears it.
    type: dict
  retire_after:
    description:
      - With O(state=stopped), wait this many seconds, then stop the color only if it was not
        started again meanwhile (every O(state=started) renews the color's start token) and is
        not the active color. Meant to run in the background (an C(async) task with C(poll=0)) after a
        switch, so that the old color stays for an instant revert without holding up the play.
      - The outcome is kept in C(<state_dir>/<project_name>/colors/<color>/retire.json).
      - Starts and stops of one color hold the color's lock file, so they never overlap.
    type: int
attributes:
  check_mode:
    support: full
    details: Reports whether the color would be started or stopped, and changes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A color that already runs the release's images from the same generated file is left alone.
author:
  - ops.rollback maintainers (@ops-rollback)
"""

EXAMPLES = r"""
- name: Start release 3f9c2a1b7d4e of the shop stack in the green color
  ops.rollback.blue_green_color:
    project_name: shop
    color: green
    release_id: 3f9c2a1b7d4e
    services:
      - name: web
        container_port: 8080
        blue_port: 18081
        green_port: 18082

- name: Stop the blue color
  ops.rollback.blue_green_color:
    project_name: shop
    color: blue
    state: stopped
    services:
      - {name: web, container_port: 8080, blue_port: 18081, green_port: 18082}

- name: In the background, stop the blue color in 10 minutes unless it serves or was started again
  ops.rollback.blue_green_color:
    project_name: shop
    color: blue
    state: stopped
    retire_after: 600
    services:
      - {name: web, container_port: 8080, blue_port: 18081, green_port: 18082}
  async: 1200
  poll: 0
"""

RETURN = r"""
color:
  description: The color.
  returned: always
  type: str
project:
  description: The color's Compose project name.
  returned: always
  type: str
project_dir:
  description: The color's directory (holds its generated compose file).
  returned: always
  type: str
files:
  description: The color's compose file, for M(ops.rollback.compose_verify) or the verify role.
  returned: always
  type: list
  elements: str
upstreams:
  description: Service -> dial address (C(host:port)) of the service in this color.
  returned: always
  type: dict
base_urls:
  description: Service -> C(http://host:port) of the service in this color.
  returned: always
  type: dict
services_to_start:
  description: Services that did not run the release's image in this color before.
  returned: when state is started
  type: list
  elements: str
pinned:
  description: Services started from a keep tag because their image reference moved.
  returned: when state is started
  type: dict
compose_up_s:
  description: Seconds C(docker compose up --wait) took.
  returned: when state is started
  type: float
stopped:
  description: Services whose containers were removed.
  returned: when state is stopped
  type: list
  elements: str
retire:
  description: What a delayed retire did (C(stopped), or why it left the color running).
  returned: when O(retire_after) is set
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ops.rollback.plugins.module_utils._blue_green import BlueGreenError, check_services
from ansible_collections.ops.rollback.plugins.module_utils._blue_green_color import ColorRunner
from ansible_collections.ops.rollback.plugins.module_utils._docker_cli import DockerCli, DockerCliError
from ansible_collections.ops.rollback.plugins.module_utils._names import NameError_, check_name
from ansible_collections.ops.rollback.plugins.module_utils._release_store import ReleaseStore
from ansible_collections.ops.rollback.plugins.module_utils._releases import ReleaseError

SERVICE_SPEC = dict(
    name=dict(type="str", required=True),
    container_port=dict(type="int", required=True),
    blue_port=dict(type="int", required=True),
    green_port=dict(type="int", required=True),
    bind_ip=dict(type="str", default="127.0.0.1"),
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project_name=dict(type="str", required=True),
            state_dir=dict(type="path", default="/var/lib/ops-rollback"),
            color=dict(type="str", required=True, choices=["blue", "green"]),
            state=dict(type="str", default="started", choices=["started", "stopped"]),
            release_id=dict(type="str"),
            services=dict(type="list", elements="dict", required=True, options=SERVICE_SPEC),
            network=dict(type="str"),
            wait_timeout=dict(type="int", default=120),
            retire_after=dict(type="int"),
            intent=dict(type="dict"),
        ),
        required_if=[("state", "started", ["release_id"])],
        supports_check_mode=True,
    )
    p = module.params
    what = "%s color %s of stack %s" % ("Starting" if p["state"] == "started" else "Stopping", p["color"], p["project_name"])
    problems = check_services(p["services"])
    if p["retire_after"] is not None and (p["state"] != "stopped" or p["retire_after"] < 0):
        problems.append("retire_after=%s needs state=stopped and a number of seconds >= 0" % p["retire_after"])
    if problems:
        module.fail_json(msg="%s: invalid input: %s" % (what, "; ".join(problems)))
    try:
        if p["release_id"]:
            check_name(p["release_id"], "release_id")
        store = ReleaseStore(module, DockerCli(module, None, p["project_name"]), p["state_dir"], p["project_name"])
        runner = ColorRunner(module, store, p["services"], p["color"], p["network"])
        if p["state"] == "started":
            result = runner.start(p["release_id"], p["wait_timeout"], p["intent"])
        elif p["retire_after"] is not None:
            result = runner.retire(p["retire_after"])
        else:
            result = runner.stop()
    except (BlueGreenError, ReleaseError, NameError_) as exc:
        module.fail_json(msg="%s: %s" % (what, exc))
    except (DockerCliError, OSError) as exc:
        module.fail_json(msg="%s failed: %s" % (what, exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
