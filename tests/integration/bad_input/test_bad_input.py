"""Bad input, table-driven: every playbook and every module gets malformed values - path
traversal, shell metacharacters, unknown IDs, wrong types, empty strings, huge values,
conflicting selectors - and must refuse them before any change, naming the variable.

Each case asserts: the run failed; the failure message names the variable; the failing task is
one that runs before anything changes (playbooks); and the shared healthy stack is exactly as it
was: its containers (IDs, images, states, restart counts), the project files, the state dir and
the backups (paths, modes, sha256), nothing written outside them (`/tmp/opsbad-escape*`), and
for Netlify no write request reached the emulator and no history line was written.

Module cases run as tasks of one playbook (ignore_errors), about 0.5 s each; playbook cases
each run ansible-playbook once (about 2-3 s).
"""
import json
import os

import pytest
from ansible_run import run_playbook

DROP = object()  # remove this extra var from the case's base
HUGE = "a" * 20000
SERVICES = [{"name": "web", "container_port": 8080, "blue_port": 18783, "green_port": 18784}]

# -- module cases: (id, module, args, variable the message must name) -------------------------
# {project} {state} {backups} are the shared stack's project dir, state dir and backup root.
PROJECT = {"project_dir": "{project}", "project_name": "opsbadin"}
# Nothing answers there: a case the module failed to refuse up front fails on the connection.
NETLIFY = {"api_url": "http://127.0.0.1:18786/api/v1", "max_retries": 0}
COLOR = {"project_name": "opsbadin", "state_dir": "{state}", "color": "blue", "release_id": "x", "services": SERVICES}
ACTIVE = {"project_name": "opsbadin", "project_dir": "{project}", "state_dir": "{state}", "state": "active", "color": "blue",
          "release_id": "x"}
RECORD = {"project_name": "opsbadin", "state_dir": "{state}", "rollback_id": "r1", "status": "succeeded", "from_release": "a",
          "to_release": "b", "started_at": "2026-01-01T00:00:00Z"}
MODULE_CASES = [
    ("backup_info-stack-traversal", "backup_info", {"backup_root": "{backups}", "stack": "../../opsbad-escape"}, "stack"),
    ("backup_info-backup_id-traversal", "backup_info", {"backup_root": "{backups}", "stack": "opsbadin", "backup_id": "../../../opsbad-escape"}, "backup_id"),
    ("blue_green_color-color-choice", "blue_green_color",
     {"project_name": "opsbadin", "state_dir": "{state}", "color": "purple", "release_id": "x", "services": SERVICES}, "color"),
    ("blue_green_color-release_id-shell", "blue_green_color",
     dict(COLOR, release_id="v1;touch /tmp/opsbad-escape"), "release_id"),
    ("blue_green_color-services-type", "blue_green_color",
     dict(COLOR, services=[{"name": "web", "container_port": "http", "blue_port": 1, "green_port": 2}]), "container_port"),
    ("blue_green_state-project_name-traversal", "blue_green_state",
     dict(ACTIVE, project_name="../opsbad-escape"), "project_name"),
    ("blue_green_state-release_id-traversal", "blue_green_state",
     dict(ACTIVE, release_id="../../../opsbad-escape"), "release_id"),
    ("caddy_upstream-two-selectors", "caddy_upstream",
     {"admin_url": "http://127.0.0.1:18785", "upstreams": ["127.0.0.1:18783"], "handler_id": "web", "host": "example.com"}, "handler_id"),
    ("caddy_upstream-no-selector", "caddy_upstream", {"admin_url": "http://127.0.0.1:18785", "upstreams": ["127.0.0.1:18783"]}, "config_path"),
    ("caddy_upstream-empty-upstreams", "caddy_upstream", {"admin_url": "http://127.0.0.1:18785", "upstreams": [], "handler_id": "web"}, "upstreams"),
    ("compose_backup-stack-traversal", "compose_backup", dict(PROJECT, backup_root="{backups}", stack="../../opsbad-escape"), "stack"),
    ("compose_backup-backup_id-shell", "compose_backup",
     dict(PROJECT, backup_root="{backups}", stack="opsbadin", backup_id="$(touch /tmp/opsbad-escape)"), "backup_id"),
    ("compose_backup-keep-zero", "compose_backup", dict(PROJECT, backup_root="{backups}", stack="opsbadin", keep=0), "keep"),
    ("compose_restore-backup_id-traversal", "compose_restore",
     dict(PROJECT, backup_root="{backups}", stack="opsbadin", backup_id="../../../opsbad-escape"), "backup_id"),
    ("compose_restore-backup_id-unknown", "compose_restore",
     dict(PROJECT, backup_root="{backups}", stack="opsbadin", backup_id="20200101T000000Z"), "backup_id"),
    ("compose_restore-wait_timeout-type", "compose_restore", dict(PROJECT, backup_root="{backups}", stack="opsbadin", wait_timeout="soon"), "wait_timeout"),
    ("compose_verify-health_timeout-type", "compose_verify", dict(PROJECT, health_timeout="forever"), "health_timeout"),
    ("tcp_migrate_req-enabled-type", "tcp_migrate_req", {"enabled": "sometimes", "persist_file": ""}, "enabled"),
    ("compose_verify-project_name-shell", "compose_verify", dict(PROJECT, project_name="opsbadin;touch /tmp/opsbad-escape"), "project_name"),
    ("netlify_deploy_info-limit-negative", "netlify_deploy_info", dict(NETLIFY, **{"site_id": "x", "limit": -1}), "limit"),
    ("netlify_deploy_restore-two-selectors", "netlify_deploy_restore", dict(NETLIFY, **{"site_id": "x", "deploy_id": "a", "commit_ref": "b"}), "deploy_id"),
    ("netlify_deploy_restore-steps_back-zero", "netlify_deploy_restore", dict(NETLIFY, **{"site_id": "x", "steps_back": 0}), "steps_back"),
    ("netlify_deploy_info-site_id-traversal", "netlify_deploy_info", dict(NETLIFY, site_id="../accounts"), "site_id"),
    ("netlify_deploy_restore-commit_ref-shell", "netlify_deploy_restore", dict(NETLIFY, site_id="x", commit_ref="abc1234;id"), "commit_ref"),
    ("netlify_deploy_restore-deploy_id-traversal", "netlify_deploy_restore", dict(NETLIFY, **{"site_id": "x", "deploy_id": "../../sites"}), "deploy_id"),
    ("release_apply-release_id-traversal", "release_apply",
     {"project_dir": "{project}", "project_name": "opsbadin", "state_dir": "{state}", "release_id": "../../opsbad-escape"}, "release_id"),
    ("release_apply-release_id-unknown", "release_apply",
     {"project_dir": "{project}", "project_name": "opsbadin", "state_dir": "{state}", "release_id": "0123456789ab"}, "release_id"),
    ("release_info-project_name-traversal", "release_info", {"project_name": "../../opsbad-escape", "state_dir": "{state}"}, "project_name"),
    ("release_record-project_name-empty", "release_record", dict(PROJECT, project_name="", state_dir="{state}"), "project_name"),
    ("release_record-keep-zero", "release_record", dict(PROJECT, state_dir="{state}", keep=0), "keep"),
    ("release_record-version-huge", "release_record", dict(PROJECT, state_dir="{state}", version="v" * 5000), "version"),
    ("rollback_plan-target-traversal", "rollback_plan", dict(PROJECT, state_dir="{state}", target="../../../etc/passwd"), "target"),
    ("rollback_plan-target-unknown", "rollback_plan", dict(PROJECT, state_dir="{state}", target="v9.9.9"), "target"),
    ("rollback_record-rollback_id-traversal", "rollback_record",
     dict(RECORD, rollback_id="../../opsbad-escape"), "rollback_id"),
    ("rollback_record-started_at-format", "rollback_record",
     dict(RECORD, started_at="yesterday"), "started_at"),
    ("stack_lock-project_name-traversal", "stack_lock",
     {"project_name": "../../opsbad-escape", "state_dir": "{state}", "run_id": "r1"}, "project_name"),
    ("stack_lock-run_id-shell", "stack_lock", {"project_name": "opsbadin", "state_dir": "{state}", "run_id": "r1`touch /tmp/opsbad-escape`"}, "run_id"),
]

# -- playbook cases: (id, playbook, extra vars over the playbook's base, variable, failing task) --
# The failing task (its name contains this text) must run before any change: the input checks,
# a role's own checks of its variables, or (unknown IDs) the step that looks the ID up.
INPUT = "Input |"
PLAYBOOK_CASES = [
    # rollback (base has confirm=ROLLBACK: a value that slips through would roll back for real)
    ("rollback-stack-traversal", "rollback", {"stack": "../opsbad-escape"}, "stack", INPUT),
    ("rollback-stack-shell", "rollback", {"stack": "opsbadin; touch /tmp/opsbad-escape"}, "stack", INPUT),
    ("rollback-stack-empty", "rollback", {"stack": ""}, "stack", INPUT),
    ("rollback-stack-missing", "rollback", {"stack": DROP}, "stack", INPUT),
    ("rollback-stack-huge", "rollback", {"stack": HUGE}, "stack", INPUT),
    ("rollback-target-traversal", "rollback", {"target": "../../../etc"}, "target", INPUT),
    ("rollback-target-shell", "rollback", {"target": "$(touch /tmp/opsbad-escape)"}, "target", INPUT),
    ("rollback-target-empty", "rollback", {"target": ""}, "target", INPUT),
    # one host: the rollout's plan (under the lock) looks the target up; fleets: the first play
    ("rollback-target-unknown", "rollback", {"target": "v9.9.9"}, "target", "Plan | Choose the target"),
    ("rollback-confirm-word", "rollback", {"confirm": "yes"}, "confirm", INPUT),
    ("rollback-strategy-choice", "rollback", {"strategy": "sideways"}, "strategy", INPUT),
    ("rollback-blue_green-missing", "rollback", {"strategy": "blue_green"}, "blue_green", INPUT),
    ("rollback-wait_timeout-type", "rollback", {"wait_timeout": "soon"}, "wait_timeout", INPUT),
    ("rollback-wait_timeout-huge", "rollback", {"wait_timeout": 10 ** 12}, "wait_timeout", INPUT),
    ("rollback-project_dir-relative", "rollback", {"project_dir": "srv/shop"}, "project_dir", INPUT),
    ("rollback-state_dir-relative", "rollback", {"state_dir": "state"}, "state_dir", INPUT),
    ("rollback-health_urls-type", "rollback", {"health_urls": "http://127.0.0.1:18780/health"}, "health_urls", INPUT),
    # record_release
    ("record_release-stack-traversal", "record_release", {"stack": "../../opsbad-escape"}, "stack", INPUT),
    ("record_release-version-traversal", "record_release", {"version": "../v1"}, "version", INPUT),
    ("record_release-keep-type", "record_release", {"keep": "all"}, "keep", INPUT),
    ("record_release-keep-zero", "record_release", {"keep": 0}, "keep", INPUT),
    ("record_release-verify-type", "record_release", {"verify": "perhaps"}, "verify", INPUT),
    # backup
    ("backup-stack-traversal", "backup", {"stack": "../opsbad-escape"}, "stack", INPUT),
    ("backup-project_dir-empty", "backup", {"project_dir": ""}, "project_dir", INPUT),
    ("backup-backup_root-relative", "backup", {"backup_root": "backups"}, "backup_root", INPUT),
    ("backup-backup_volumes-type", "backup", {"backup_volumes": "some"}, "backup_volumes", INPUT),
    ("backup-backup_keep-zero", "backup", {"backup_keep": 0}, "backup_keep", "Check the values"),
    # restore (base has confirm=RESTORE)
    ("restore-backup_id-traversal", "restore", {"backup_id": "../../../opsbad-escape"}, "backup_id", INPUT),
    ("restore-backup_id-shell", "restore", {"backup_id": "latest; touch /tmp/opsbad-escape"}, "backup_id", INPUT),
    ("restore-backup_id-unknown", "restore", {"backup_id": "20200101T000000Z"}, "backup_id", "Restore the backup of stack"),
    ("restore-confirm-word", "restore", {"confirm": "yes"}, "confirm", INPUT),
    ("restore-stack-traversal", "restore", {"stack": "../opsbad-escape"}, "stack", INPUT),
    # verify
    ("verify-stack-shell", "verify", {"stack": "opsbadin|touch /tmp/opsbad-escape"}, "stack", INPUT),
    ("verify-project_dir-missing", "verify", {"project_dir": DROP}, "project_dir", INPUT),
    ("verify-health_urls-dict", "verify", {"health_urls": {"url": "http://127.0.0.1:18780/health"}}, "health_urls", "Validating arguments"),
    # blue_green_deploy
    ("blue_green_deploy-release-traversal", "blue_green_deploy", {"release": "../../opsbad-escape"}, "release", INPUT),
    ("blue_green_deploy-release-unknown", "blue_green_deploy", {"release": "v9.9.9"}, "release", "Release |"),
    ("blue_green_deploy-blue_green-missing", "blue_green_deploy", {"blue_green": DROP}, "blue_green", INPUT),
    ("blue_green_deploy-services-type", "blue_green_deploy", {"blue_green": {"services": "web", "proxy_url": "http://127.0.0.1:18782"}}, "services", INPUT),
    ("blue_green_deploy-stack-dotdot", "blue_green_deploy", {"stack": ".."}, "stack", INPUT),
    ("blue_green_deploy-tcp_migrate_req-type", "blue_green_deploy",
     {"blue_green": {"services": SERVICES, "proxy_url": "http://127.0.0.1:18782", "tcp_migrate_req": "sometimes"}}, "tcp_migrate_req", INPUT),
    # netlify_rollback (base has confirm=ROLLBACK and the emulator's token)
    ("netlify_rollback-site_id-empty", "netlify_rollback", {"site_id": ""}, "site_id", INPUT),
    ("netlify_rollback-site_id-traversal", "netlify_rollback", {"site_id": "../../accounts"}, "site_id", INPUT),
    ("netlify_rollback-two-selectors", "netlify_rollback", {"deploy_id": "6650f1c2e00000000000000b", "commit_ref": "594fd16"}, "commit_ref", INPUT),
    ("netlify_rollback-steps_back-type", "netlify_rollback", {"steps_back": "two"}, "steps_back", INPUT),
    ("netlify_rollback-steps_back-huge", "netlify_rollback", {"steps_back": 10 ** 9}, "steps_back", INPUT),
    ("netlify_rollback-deploy_id-shell", "netlify_rollback", {"deploy_id": "$(id)"}, "deploy_id", INPUT),
    ("netlify_rollback-deploy_id-unknown", "netlify_rollback", {"deploy_id": "6650f1c2e0000000000000ff"}, "deploy_id", "List the deploys"),
    ("netlify_rollback-confirm-word", "netlify_rollback", {"confirm": "sure"}, "confirm", INPUT),
    ("netlify_rollback-api_url-scheme", "netlify_rollback", {"api_url": "file:///etc/passwd"}, "api_url", INPUT),
    ("netlify_rollback-token-missing", "netlify_rollback", {"NETLIFY_AUTH_TOKEN": ""}, "NETLIFY_AUTH_TOKEN", INPUT),
]


def fill(value, bed):
    if isinstance(value, str):
        return value.format(project=bed.stack.project_dir, state=bed.stack.state_dir, backups=bed.stack.backup_root)
    if isinstance(value, list):
        return [fill(v, bed) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, bed) for k, v in value.items()}
    return value


def base_vars(playbook, bed, emulator, tmp):
    s = bed.stack
    common = {"stack": s.name, "project_dir": s.project_dir}
    if playbook == "rollback":
        return dict(common, state_dir=s.state_dir, backup_root=s.backup_root, confirm="ROLLBACK",
                    health_urls=[{"url": "http://127.0.0.1:%d/health" % s.port}])
    if playbook == "record_release":
        return dict(common, state_dir=s.state_dir, version="v2", verify=False)
    if playbook == "backup":
        return dict(common, backup_root=s.backup_root)
    if playbook == "restore":
        return dict(common, backup_root=s.backup_root, confirm="RESTORE")
    if playbook == "verify":
        return common
    if playbook == "blue_green_deploy":
        return dict(common, state_dir=s.state_dir, release="v2",
                    blue_green={"services": SERVICES, "proxy_url": "http://127.0.0.1:18782"})
    return {"site_id": "3f1a7c52-9b1e-4c7d-8a2f-6d5e4b3c2a10", "api_url": emulator.api_url, "confirm": "ROLLBACK",
            "history_file": os.path.join(tmp, "netlify-history.jsonl")}


def failures(run):
    """(task name, message) of every failed task result, in run order."""
    found = []
    for play in (run.report or {}).get("plays", []):
        for task in play.get("tasks", []):
            for result in task["hosts"].values():
                if result.get("failed") or result.get("unreachable"):
                    found.append((task["task"]["name"], str(result.get("msg", ""))))
    return found


def changed(run):
    return [task["task"]["name"] for play in (run.report or {}).get("plays", []) for task in play.get("tasks", [])
            if any(r.get("changed") for r in task["hosts"].values())]


@pytest.fixture(scope="module")
def module_run(bed, netlify_token, tmp_path_factory):
    """All module cases as tasks of one playbook, each ignoring its error; the picture of
    everything before and after."""
    tasks = [{"name": "case " + case_id, module_name if "." in module_name else "ops.rollback." + module_name: fill(args, bed),
              "ignore_errors": True}
             for case_id, module_name, args, _var in MODULE_CASES]
    play = [{"name": "Bad input to every module", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    path = tmp_path_factory.mktemp("modules") / "modules.yml"
    path.write_text(json.dumps(play))
    before = bed.picture()
    run = run_playbook(str(path), env={"NETLIFY_AUTH_TOKEN": netlify_token}, timeout=300)
    return run, before, bed.picture()


@pytest.mark.parametrize("case_id,module_name,args,var", MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_module_rejects(module_run, case_id, module_name, args, var):
    run, before, after = module_run
    results = run.task_results("case " + case_id)
    assert len(results) == 1, run.stdout[-3000:] + run.stderr[-3000:]
    result = results[0]
    assert result.get("failed") is True, "%s accepted %r: %s" % (module_name, args, result)
    assert var in result.get("msg", ""), "message does not name %s: %s" % (var, result.get("msg"))
    assert result.get("changed") is not True
    assert after == before, "the module cases changed the stack, its state or its backups"


@pytest.mark.parametrize("case_id,playbook,extra,var,failing_task", PLAYBOOK_CASES, ids=[c[0] for c in PLAYBOOK_CASES])
def test_playbook_rejects(bed, emulator, netlify_token, tmp_path, case_id, playbook, extra, var, failing_task):
    variables = base_vars(playbook, bed, emulator, str(tmp_path))
    env = {"NETLIFY_AUTH_TOKEN": netlify_token}
    for key, value in extra.items():
        if key == "NETLIFY_AUTH_TOKEN":
            env[key] = value
        elif value is DROP:
            variables.pop(key, None)
        else:
            variables[key] = value
    emulator.reset()
    before = bed.picture()
    run = run_playbook("ops.rollback." + playbook, variables, env=env, timeout=300)
    after = bed.picture()

    assert run.rc != 0, "%s accepted %s=%r" % (playbook, var, extra)
    failed = failures(run)
    assert failed, run.stdout[-3000:] + run.stderr[-3000:]
    task = failed[0][0]
    # a no_log task fails without a message; the rescue that follows gives it
    msg = " | ".join(m for _t, m in failed)
    assert failing_task in task, "failed at %r, expected a task %r before any change: %s" % (task, failing_task, msg)
    assert var in msg, "message does not name %s: %s" % (var, msg)
    assert HUGE not in msg, "the message repeats a huge value in full"
    assert changed(run) == []
    assert after == before, "the stack, its state or its backups changed"
    if playbook == "netlify_rollback":
        writes = [r for r in emulator.requests if r["method"] != "GET"]
        assert writes == [], writes
        assert not os.path.exists(variables["history_file"])
