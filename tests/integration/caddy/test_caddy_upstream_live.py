"""ops.rollback.caddy_upstream against a real Caddy: Debian's 2.6.2 (ETag in an HTTP trailer)
and a current 2.x (ETag header), through ansible-playbook.

conftest.py starts the Caddies and runs playbooks/scenario.yml once per Caddy version (the
`scenario` fixture); each test here asserts on the module's results *and* on Caddy itself:
config bytes, Caddy's own log of admin requests, /reverse_proxy/upstreams, and requests
through the proxy while it switched.
"""
import json

from caddy_helpers import (
    SHOP_A_DIAL, SHOP_B_DIAL, node_at, proxy_path, static_path,
)

PHASES = ["Check mode, first", "Real, first", "Check mode, second", "Real, second"]


def compact(value):
    """JSON as Caddy (Go's encoding/json) writes it, for ASCII data."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def failed(result):
    """Whether the module failed. The playbook keeps going on expected failures
    (failed_when: false), and a result of this module has a `msg` only when it failed."""
    return result.get("failed") is True or "msg" in result


def test_playbook_ran(scenario):
    assert scenario.run is not None, "ansible-playbook did not run (see the captured log)"
    assert scenario.run.rc == 0, scenario.run.stdout[-4000:] + scenario.run.stderr[-4000:]


def test_each_selector_hits_its_handler_check_real_check_real(scenario):
    before = json.loads(scenario.sites_before)
    assert "/handle/0/routes/0/handle/0/routes/0/handle/0" in scenario.selector_paths[1]  # 2 subroutes deep
    for phase, expect_changed in zip(PHASES, [True, True, False, False]):
        results = scenario.results(phase)
        assert len(results) == len(scenario.selector_cases)
        for case, path, result in zip(scenario.selector_cases, scenario.selector_paths, results):
            assert not failed(result), result
            assert result["changed"] is expect_changed, (phase, case, result)
            assert result["config_path"] == path, (phase, case, result)
            assert result["upstreams"] == case["upstreams"], (phase, result)
            assert result["conflicts"] == 0
            if expect_changed:
                old = [u["dial"] for u in node_at(before, path)["upstreams"]]
                assert result["previous_upstreams"] == old
                assert result["diff"]["before"] == {"upstreams": old}
                assert result["diff"]["after"] == {"upstreams": case["upstreams"]}
            else:
                assert "diff" not in result
    assert scenario.results("Real, first")[0]["handler_id"] == "shop_b"


def test_one_write_per_change_and_nothing_else_changes(scenario):
    # Caddy's log: exactly one write per case, the first real run's PATCH of .../upstreams;
    # the check-mode runs and the second real run sent none.
    assert sorted(scenario.sites.admin_writes()) == sorted(
        ("PATCH", path + "/upstreams") for path in scenario.selector_paths)
    # The config is byte-for-byte what it was, except for the targets' upstreams.
    before = json.loads(scenario.sites_before)
    expected = scenario.sites_before.decode()
    for path, case in zip(scenario.selector_paths, scenario.selector_cases):
        old = node_at(before, path)["upstreams"]
        new = [{"dial": d} for d in case["upstreams"]]
        assert expected.count(compact(old)) == 1
        expected = expected.replace(compact(old), compact(new))
    assert scenario.sites.config_bytes().decode() == expected
    running = {u["address"] for u in json.loads(scenario.sites.get("/reverse_proxy/upstreams"))}
    assert {"127.0.0.1:20202", "127.0.0.1:20101", "127.0.0.1:20102", "127.0.0.1:20302",
            "127.0.0.1:20401"} <= running


def test_errors_are_clear_and_change_nothing(scenario):
    before = json.loads(scenario.errors_before)
    shop = [proxy_path(before, SHOP_A_DIAL), proxy_path(before, SHOP_B_DIAL)]
    port = scenario.forbidden.admin_url.rsplit(":", 1)[1]
    expected = [
        ["host shop.test matches 2 reverse_proxy handlers", "select one with handler_id, server"] + shop,
        ["@id api_root is a static_response handler at %s, not reverse_proxy" % static_path(before)],
        ["Reading Caddy's config (GET /config/) failed: HTTP 403 host not allowed: 127.0.0.1:%s" % port,
         "use that address in admin_url"],
        ["Reading Caddy's config (GET /config/) failed: Caddy admin API at %s is unreachable" % scenario.down_url],
    ]
    results = scenario.results("Errors")
    assert len(results) == len(expected)
    for case, needles, result in zip(scenario.error_cases, expected, results):
        assert failed(result), (case, result)
        assert result.get("changed") is False
        for needle in needles:
            assert needle in result["msg"], (case, needle, result["msg"])
    assert scenario.errors_site.config_bytes() == scenario.errors_before
    assert scenario.errors_site.admin_writes() == []
    assert scenario.forbidden.config_bytes() == scenario.forbidden_before
    assert scenario.forbidden.admin_writes() == []


def test_concurrent_change_is_detected_through_the_etag_and_retried(scenario):
    assert scenario.once.errors == [] and scenario.always.errors == []
    first, second = scenario.results("Conflicts")
    app_path, routes = scenario.race_app_path, scenario.race_routes
    index = int(app_path.split("/")[7])
    new_path = "%s/%d/%s" % (routes, index + 1, "/".join(app_path.split("/")[8:]))
    after = scenario.race.config()

    assert not failed(first), first
    assert first["changed"] is True and first["conflicts"] == 1
    assert first["config_path"] == new_path
    assert [(m, p, s) for m, p, s in scenario.once.seen if m != "GET"] == [
        ("PATCH", app_path + "/upstreams", 412), ("PATCH", new_path + "/upstreams", 200)]
    assert node_at(after, new_path)["upstreams"] == [{"dial": "127.0.0.1:20001"}]
    assert node_at(after, routes + "/0") == scenario.inserted        # the other client's change stays

    assert failed(second) and second["changed"] is False
    assert "Setting upstreams of handler at %s" % proxy_path(after, SHOP_B_DIAL) in second["msg"]
    assert "HTTP 412" in second["msg"] and "gave up after 3 conflicts (retries=2)" in second["msg"]
    assert [s for m, _p, s in scenario.always.seen if m == "PATCH"] == [412, 412, 412]
    assert [u["dial"] for u in node_at(after, proxy_path(after, SHOP_B_DIAL))["upstreams"]] == [
        "127.0.0.1:10202", "127.0.0.1:10203"]


def test_unix_socket_and_enforce_origin(scenario):
    for phase, expect_changed in (("Sockets, first", True), ("Sockets, second", False)):
        for result in scenario.results(phase):
            assert not failed(result), result
            assert result["changed"] is expect_changed, (phase, result)
    for caddy in (scenario.unix, scenario.strict):
        handler = caddy.config()["apps"]["http"]["servers"]["s"]["routes"][0]["handle"][0]
        assert handler["upstreams"] == [{"dial": "127.0.0.1:20001"}]
        assert len(caddy.admin_writes()) == 1


def test_switching_drops_no_request(scenario):
    """What blue_green_switch relies on: a switch through the admin API is a graceful reload."""
    assert [r["changed"] for r in scenario.results("Switch")] == [True, True]
    load = scenario.load
    # new connections and requests in flight (0.5 s each, spanning the reloads) never fail
    for kind in ("fresh", "slow"):
        requests = getattr(load, kind)
        failures = [r for r in requests if r[0] != 200]
        assert requests and not failures, (kind, failures[:5], len(requests))
    assert {body for _status, body in load.fresh} == {b"blue", b"green"}
    assert len(load.slow) >= 4
    # A reload closes idle keep-alive connections (graceful shutdown of the old server). A client
    # that reuses one at that instant gets "closed without response" before anything was sent
    # upstream, at most once per switch; clients that retry idempotent requests (browsers,
    # most libraries) do not notice. Nothing else may fail.
    failures = [r for r in load.keepalive if r[0] != 200]
    assert len(load.keepalive) > len(failures)
    assert len(failures) <= len(scenario.switch_cases), failures
    assert all("RemoteDisconnected" in r[1] or "ConnectionReset" in r[1] or "BrokenPipe" in r[1]
               for r in failures), failures
    assert len(load.connections) > 1       # the keep-alive connection was replaced after a reload
