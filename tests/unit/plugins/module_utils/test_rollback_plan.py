# Copyright: Contributors to the ops.rollback collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Port checks of the rollback plan: published ports, ports the project holds, free ports."""

from __future__ import annotations

import socket

import pytest

from ansible_collections.ops.rollback.plugins.module_utils._rollback_plan import (
    RollbackPlanner,
    port_is_free,
    project_host_ports,
    published_ports,
)


# -- published_ports ---------------------------------------------------------------------------
def test_published_ports_of_a_resolved_config_sorted_by_service():
    resolved = {"services": {
        "web": {"ports": [{"target": 80, "published": "8080", "protocol": "tcp", "host_ip": "127.0.0.1"}]},
        "dns": {"ports": [{"target": 53, "published": "5353", "protocol": "udp"}]},
    }}
    assert published_ports(resolved) == [("dns", "0.0.0.0", 5353, "udp"), ("web", "127.0.0.1", 8080, "tcp")]


def test_published_ports_missing_host_ip_and_protocol_default():
    resolved = {"services": {"web": {"ports": [{"target": 80, "published": 8000}]}}}
    assert published_ports(resolved) == [("web", "0.0.0.0", 8000, "tcp")]


def test_published_ports_range_gives_its_first_port():
    # `docker compose config` keeps "8000-8001:80" as one entry: Docker binds one port of the range
    resolved = {"services": {"web": {"ports": [{"target": 80, "published": "8000-8001", "protocol": "tcp"}]}}}
    assert published_ports(resolved) == [("web", "0.0.0.0", 8000, "tcp")]


@pytest.mark.parametrize("published", [None, ""])
def test_published_ports_skips_unpublished_ports(published):
    port = {"target": 5000, "host_ip": "127.0.0.1"}
    if published is not None:
        port["published"] = published
    assert published_ports({"services": {"web": {"ports": [port]}}}) == []


def test_published_ports_of_services_without_ports_or_no_services():
    assert published_ports({"services": {"web": {"image": "x"}, "db": {"ports": None}}}) == []
    assert published_ports({}) == []
    assert published_ports({"services": None}) == []


# -- project_host_ports --------------------------------------------------------------------------
def test_project_host_ports_collects_every_bound_host_port():
    containers = [
        {"NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                                                  {"HostIp": "::", "HostPort": "8080"}],
                                       "443/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8443"}]}}},
        {"NetworkSettings": {"Ports": {"5432/tcp": None, "9000/tcp": [{"HostIp": "", "HostPort": ""}]}}},
        {"NetworkSettings": {"Ports": None}},
        {"NetworkSettings": None},
        {},
    ]
    assert project_host_ports(containers) == {8080, 8443}


def test_project_host_ports_without_containers_is_empty():
    assert project_host_ports([]) == set()


# -- port_is_free ----------------------------------------------------------------------------------
def test_port_is_free_false_for_a_listening_tcp_port():
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        assert port_is_free("127.0.0.1", port, "tcp") is False
        assert port_is_free("0.0.0.0", port, "tcp") is False
    finally:
        holder.close()


def test_port_is_free_false_for_a_bound_udp_port():
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        assert port_is_free("127.0.0.1", port, "udp") is False
    finally:
        holder.close()


def test_port_is_free_true_once_the_holder_released_it():
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    holder.close()
    assert port_is_free("127.0.0.1", port, "tcp") is True


def test_port_is_free_false_for_an_address_not_on_this_host():
    # 192.0.2.0/24 is TEST-NET-1: binding to it fails, which must read as "not free", not raise
    assert port_is_free("192.0.2.1", 0, "tcp") is False


# -- ports the stack holds: under blue_green, the colors' too ------------------------------------
def _bound(port):
    return {"NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}}}


class _Cli:
    def __init__(self, containers):
        self.containers = containers

    def project_containers(self):
        return self.containers


class _Store:
    stack = "shop"

    def stored_resolved(self, release):
        return {"services": {"web": {"ports": [{"target": 8080, "published": str(release["port"]), "host_ip": "127.0.0.1"}]}}}


@pytest.fixture
def held_by_blue():
    """A port held by a listening socket, as the active blue color's container holds its port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock.getsockname()[1]
    sock.close()


def _planner(port):
    planner = RollbackPlanner(None, _Cli([]), _Store())
    colors = {"shop-blue": _Cli([_bound(port)]), "shop-green": _Cli([])}
    planner.project_cli = colors.__getitem__
    return planner


def test_blue_green_target_on_a_port_an_own_color_holds_is_not_a_problem(held_by_blue):
    planner = _planner(held_by_blue)
    assert planner.port_problems({"port": held_by_blue}, "blue_green") == []
    assert held_by_blue in planner.held_ports("blue_green")


def test_recreate_target_on_a_port_another_project_holds_is_a_problem(held_by_blue):
    planner = _planner(held_by_blue)
    assert planner.held_ports("recreate") == set()
    assert planner.port_problems({"port": held_by_blue}, "recreate") == [
        "port 127.0.0.1:%d/tcp of service web is taken by another process" % held_by_blue]
