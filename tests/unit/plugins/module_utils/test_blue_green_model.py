# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The blue-green model: which color a release goes to, the services' checks, the color's
compose model generated from a release's resolved config."""

from __future__ import annotations

import json

import pytest

from ansible_collections.ops.rollback.plugins.module_utils._blue_green import (
    BlueGreenError,
    check_services,
    color_model,
    load_state,
    model_bytes,
    networks_needed,
    save_state,
    volumes_needed,
    target_color,
)

WEB = {"name": "web", "container_port": 8080, "blue_port": 18081, "green_port": 18082, "bind_ip": "127.0.0.1"}

RESOLVED = {
    "name": "shop",
    "services": {
        "db": {"image": "postgres:15", "networks": {"default": None}, "volumes": [{"type": "volume", "source": "dbdata", "target": "/d"}]},
        "web": {
            "image": "app:v1",
            "environment": {"APP_SECRET": "s3cret"},
            "ports": [{"mode": "ingress", "host_ip": "127.0.0.1", "target": 8080, "published": "18080", "protocol": "tcp"}],
            "depends_on": {"db": {"condition": "service_healthy", "required": True}},
            "networks": {"default": None},
            "volumes": [{"type": "volume", "source": "webdata", "target": "/data"},
                        {"type": "bind", "source": "/srv/shop/conf", "target": "/conf"}],
        },
    },
    "networks": {"default": {"name": "shop_default", "ipam": {}}},
    "volumes": {"dbdata": {"name": "shop_dbdata"}, "webdata": {"name": "shop_webdata"}},
}


def test_a_fresh_stack_starts_in_blue():
    assert target_color({"active": None, "colors": {}}, "r1") == "blue"


def test_the_idle_color_takes_a_new_release():
    assert target_color({"active": "blue", "colors": {"blue": {"release_id": "r1"}}}, "r2") == "green"
    assert target_color({"active": "green", "colors": {"green": {"release_id": "r2"}}}, "r1") == "blue"


def test_the_active_color_keeps_the_release_it_runs():
    assert target_color({"active": "green", "colors": {"green": {"release_id": "r2"}}}, "r2") == "green"


def test_state_round_trip(tmp_path):
    assert load_state(str(tmp_path), "shop") == {"active": None, "colors": {}}
    save_state(str(tmp_path), "shop", {"active": "blue", "colors": {"blue": {"release_id": "r1"}}})
    assert load_state(str(tmp_path), "shop")["active"] == "blue"
    assert (tmp_path / "shop" / "blue_green.json").stat().st_mode & 0o777 == 0o600


def test_valid_services_have_no_problem():
    assert check_services([WEB]) == []


def test_services_problems_are_named():
    problems = check_services([WEB, dict(WEB), dict(WEB, name="api", blue_port=18082, green_port=70000)])
    text = "; ".join(problems)
    assert "listed twice: web" in text
    assert "services.api.green_port: 70000 is not a port" in text
    assert "127.0.0.1:18082 is already" in text
    assert check_services([]) == ["services: at least one switchable service is needed"]


def test_the_color_model_has_only_the_switchable_services_on_the_color_port():
    model = color_model(RESOLVED, [WEB], "green", "shop_default", {"web": "app:v1"})
    assert sorted(model["services"]) == ["web"]
    web = model["services"]["web"]
    assert web["ports"] == [{"mode": "ingress", "host_ip": "127.0.0.1", "target": 8080, "published": "18082", "protocol": "tcp"}]
    assert "depends_on" not in web  # db runs in the shared project
    assert web["environment"] == {"APP_SECRET": "s3cret"}
    assert model["networks"] == {"default": {"name": "shop_default", "external": True}}
    # The color shares the shared project's named volume; unused volumes are left out.
    assert model["volumes"] == {"webdata": {"name": "shop_webdata", "external": True}}
    assert volumes_needed(model) == [("webdata", "shop_webdata")]
    assert networks_needed(model) == ["shop_default"]
    # The input is not modified.
    assert RESOLVED["services"]["web"]["ports"][0]["published"] == "18080"


def test_the_color_model_runs_the_pinned_image():
    model = color_model(RESOLVED, [WEB], "blue", "shop_default", {"web": "ops-rollback/shop_web:r1"})
    assert model["services"]["web"]["image"] == "ops-rollback/shop_web:r1"
    assert model["services"]["web"]["ports"][0]["published"] == "18081"


def test_the_color_model_bytes_are_stable():
    one = model_bytes(color_model(RESOLVED, [WEB], "blue", "shop_default", {"web": "app:v1"}))
    two = model_bytes(color_model(json.loads(json.dumps(RESOLVED)), [WEB], "blue", "shop_default", {"web": "app:v1"}))
    assert one == two


def test_a_service_missing_from_the_release_is_refused():
    with pytest.raises(BlueGreenError, match="api are not in the release"):
        color_model(RESOLVED, [dict(WEB, name="api")], "blue", "shop_default", {"api": "x"})


def test_container_name_is_refused():
    resolved = json.loads(json.dumps(RESOLVED))
    resolved["services"]["web"]["container_name"] = "web"
    with pytest.raises(BlueGreenError, match="sets container_name web"):
        color_model(resolved, [WEB], "blue", "shop_default", {"web": "app:v1"})
