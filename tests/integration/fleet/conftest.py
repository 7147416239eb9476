"""A fleet of 20 inventory hosts for the fleet rollback tests: local connection, one tiny
stack each (project opsfleetNN) on the local engine. ops.rollback.record_release, run once
over the whole fleet per release, records v1 (verified healthy) and then v2 (the broken
deploy, unverified), which runs. Host ODD_HOST also had v3 (healthy) between them, so its
`previous` is not the others'.

The fleet is shared by the tests of the module, which move it on in order (see
test_fleet_rollback.py); everything (containers, volumes, keep tags, state dirs) is removed
at the end.
"""
import json
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "rollback"))

from ansible_run import run_playbook  # noqa: E402
from stack import Stack, docker  # noqa: E402  (needs the path above)

BASE = "/tmp/ops-rollback-fleet"
HOSTS = ["opsfleet%02d" % n for n in range(1, 21)]
ODD_HOST = "opsfleet07"
FORKS = ["--forks", "10"]


class FleetStack(Stack):
    """The rollback tests' Stack with the fleet's compose file and the same .env everywhere."""

    def __init__(self, name):
        super().__init__(name, None, os.path.join(BASE, name))

    def create(self):
        self.destroy()
        os.makedirs(self.project_dir, mode=0o700)
        shutil.copy(os.path.join(HERE, "files", "compose.yml"), os.path.join(self.project_dir, "compose.yml"))

    def write_env(self, version, image=None, unhealthy=False):
        with open(os.path.join(self.project_dir, ".env"), "w") as handle:
            handle.write("APP_VERSION=%s\n" % version)

    def web(self):
        """(container id, image id, health status) of the running web container."""
        cid = self.containers()["web"][0]
        info = json.loads(docker("inspect", cid).stdout)[0]
        return cid, info["Image"], info["State"].get("Health", {}).get("Status")


class Fleet:
    def __init__(self):
        self.stacks = {host: FleetStack(host) for host in HOSTS}
        self.inventory = os.path.join(BASE, "inventory.yml")

    def each(self, func):
        with ThreadPoolExecutor(max_workers=10) as pool:
            return dict(zip(HOSTS, pool.map(func, [self.stacks[h] for h in HOSTS])))

    def write_inventory(self, host_vars=None):
        """One host per stack; host_vars adds variables to some hosts (e.g. a failing check)."""
        hosts = {}
        for host, s in self.stacks.items():
            hosts[host] = {"stack": s.name, "project_dir": s.project_dir, "state_dir": s.state_dir,
                           "backup_root": s.backup_root}
            hosts[host].update((host_vars or {}).get(host, {}))
        inventory = {"all": {"vars": {"ansible_connection": "local",
                                      "ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                             "hosts": hosts}}
        with open(self.inventory, "w") as handle:
            json.dump(inventory, handle, indent=1)

    def run(self, playbook, extra_vars, **kwargs):
        kwargs.setdefault("extra_args", FORKS)
        return run_playbook(playbook, extra_vars, inventory=self.inventory, **kwargs)

    def deploy_and_record(self, version, verify=True, hosts=HOSTS):
        with ThreadPoolExecutor(max_workers=10) as pool:
            list(pool.map(lambda h: self.stacks[h].deploy(version), hosts))
        run = self.run("ops.rollback.record_release", {"version": version, "verify": verify}, json_output=False,
                       extra_args=FORKS + ["--limit", ",".join(hosts)])
        assert run.rc == 0, run.stdout[-5000:] + run.stderr[-3000:]

    def destroy(self):
        self.each(lambda s: s.destroy())
        shutil.rmtree(BASE, ignore_errors=True)


@pytest.fixture(scope="module")
def fleet():
    f = Fleet()
    f.destroy()
    os.makedirs(BASE, mode=0o700)
    f.each(lambda s: s.create())
    f.write_inventory()
    f.deploy_and_record("v1")
    f.deploy_and_record("v3", hosts=[ODD_HOST])
    f.deploy_and_record("v2", verify=False)
    yield f
    f.destroy()
