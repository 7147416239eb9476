# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Blue-green colors of a Compose stack.

The stack's stateful services (the database) run in the shared project ``<stack>``. The
switchable services run twice, in the color projects ``<stack>-blue`` and ``<stack>-green``,
each on its own host ports and joined to the shared project's network, so they reach the
database by its service name. A color project is started from the release's *resolved*
config (``resolved.json``, stored when the release was recorded): every path in it is
absolute and every variable already interpolated, so the color needs neither the project
directory nor its ``.env``. Which color serves is kept in ``<state_dir>/<stack>/blue_green.json``.
"""

from __future__ import annotations

import copy
import json
import os

from ansible_collections.ops.rollback.plugins.module_utils._releases import stack_dir
from ansible_collections.ops.rollback.plugins.module_utils._state_files import ensure_dir, read_json, write_json_atomic

COLORS = ("blue", "green")
STATE_FILE = "blue_green.json"
COLOR_COMPOSE_FILE = "compose.json"


class BlueGreenError(Exception):
    """The colors can't be set up as asked; the message says why."""


def other_color(color):
    return COLORS[1] if color == COLORS[0] else COLORS[0]


def color_project(stack, color):
    return "%s-%s" % (stack, color)


def color_dir(state_dir, stack, color):
    return os.path.join(stack_dir(state_dir, stack), "colors", color)


def color_compose_path(state_dir, stack, color):
    return os.path.join(color_dir(state_dir, stack, color), COLOR_COMPOSE_FILE)


def state_path(state_dir, stack):
    return os.path.join(stack_dir(state_dir, stack), STATE_FILE)


def load_state(state_dir, stack):
    state = read_json(state_path(state_dir, stack), default=None) or {}
    state.setdefault("active", None)
    state.setdefault("colors", {})
    return state


def save_state(state_dir, stack, state):
    ensure_dir(stack_dir(state_dir, stack))
    write_json_atomic(state_path(state_dir, stack), state)


def target_color(state, release_id):
    """The color the release goes to: the active one when it already runs the release (a
    repeat run), else the idle one (blue on a stack that never switched)."""
    active = state.get("active")
    if active in COLORS and (state["colors"].get(active) or {}).get("release_id") == release_id:
        return active
    return other_color(active) if active in COLORS else COLORS[0]


def check_services(services):
    """Problems with the switchable services' list (names, ports), as messages."""
    problems = []
    names = [s["name"] for s in services]
    if not services:
        problems.append("services: at least one switchable service is needed")
    if len(set(names)) != len(names):
        problems.append("services: a service is listed twice: %s" % ", ".join(sorted(n for n in set(names) if names.count(n) > 1)))
    ports = {}
    for svc in services:
        for key in ("container_port", "blue_port", "green_port"):
            if not 1 <= int(svc[key]) <= 65535:
                problems.append("services.%s.%s: %s is not a port (1-65535)" % (svc["name"], key, svc[key]))
        for color in COLORS:
            where = (svc.get("bind_ip") or "127.0.0.1", int(svc["%s_port" % color]))
            if where in ports:
                problems.append("services.%s.%s_port: %s:%d is already %s" % (svc["name"], color, where[0], where[1], ports[where]))
            ports[where] = "services.%s.%s_port" % (svc["name"], color)
    return problems


def dial(svc, color):
    return "%s:%d" % (svc.get("bind_ip") or "127.0.0.1", int(svc["%s_port" % color]))


def color_model(resolved, services, color, network, images):
    """The compose model of one color: only the switchable services, on the color's ports,
    on the shared network (external), with the release's images.

    resolved: the release's resolved config; services: the switchable services' options;
    images: service -> image reference to run (a keep tag when the recorded tag moved)."""
    defined = resolved.get("services") or {}
    wanted = {s["name"]: s for s in services}
    missing = sorted(set(wanted) - set(defined))
    if missing:
        raise BlueGreenError("switchable service(s) %s are not in the release (it has: %s)"
                             % (", ".join(missing), ", ".join(sorted(defined)) or "none"))
    model = {"services": {}}
    for name, svc in sorted(wanted.items()):
        spec = copy.deepcopy(defined[name])
        if spec.get("container_name"):
            raise BlueGreenError("service %s sets container_name %s: two colors can't both run it; remove container_name"
                                 % (name, spec["container_name"]))
        if str(spec.get("network_mode", "")).startswith(("service:", "container:")):
            raise BlueGreenError("service %s uses network_mode %s, which a color project can't share" % (name, spec["network_mode"]))
        spec["image"] = images[name]
        spec.pop("build", None)
        spec["ports"] = [{"mode": "ingress", "host_ip": svc.get("bind_ip") or "127.0.0.1", "target": int(svc["container_port"]),
                          "published": str(int(svc["%s_port" % color])), "protocol": "tcp"}]
        # Dependencies on shared services run in the shared project, not in the color.
        depends = spec.get("depends_on") or {}
        kept = {dep: cond for dep, cond in depends.items() if dep in wanted}
        if kept:
            spec["depends_on"] = kept
        else:
            spec.pop("depends_on", None)
        model["services"][name] = spec
    # The shared project's network joins the colors to the shared services; it must exist.
    networks = {}
    for key, net in (resolved.get("networks") or {}).items():
        used = any(key in (spec.get("networks") or {"default": None}) for spec in model["services"].values())
        if used:
            net = dict(net or {})
            if key == "default" and network:
                net = {"name": network}
            net["external"] = True
            networks[key] = net
    if "default" not in networks and any("networks" not in spec for spec in model["services"].values()):
        networks["default"] = {"name": network, "external": True}
    model["networks"] = networks
    # Named volumes keep their resolved names (<stack>_<volume>): both colors share the data.
    used_volumes = set()
    for spec in model["services"].values():
        for mount in spec.get("volumes") or []:
            if isinstance(mount, dict) and mount.get("type") == "volume" and mount.get("source"):
                used_volumes.add(mount["source"])
    # External: they belong to the shared project (see ColorRunner.ensure_volumes).
    volumes = {k: dict(v or {}, external=True) for k, v in (resolved.get("volumes") or {}).items() if k in used_volumes}
    if volumes:
        model["volumes"] = volumes
    for key in ("secrets", "configs"):
        if resolved.get(key):
            model[key] = resolved[key]
    return model


def model_bytes(model):
    return (json.dumps(model, indent=2, sort_keys=True) + "\n").encode("utf-8")


def volumes_needed(model):
    """(key, name) of the named volumes the color uses."""
    return sorted((key, vol.get("name") or key) for key, vol in (model.get("volumes") or {}).items())


def networks_needed(model):
    return sorted({net.get("name") for net in (model.get("networks") or {}).values() if net.get("external") and net.get("name")})
