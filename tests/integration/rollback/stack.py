"""A real Compose stack for the rollback tests, driven with the docker CLI, and readers of
what is really there: containers, the app's answer, the rows, the state files."""
import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.request

from ansible_run import run_playbook

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SEED = os.path.join(ROOT, "demo", "stack", "seed.sql")
SECRET_PREFIX = "it-secret-value-"


def docker(*args, check=True, input_=None):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, input=input_)


class Stack:
    def __init__(self, name, port, base):
        self.name = name
        self.port = port
        self.base = base
        self.project_dir = os.path.join(base, "stack")
        self.state_dir = os.path.join(base, "state")
        self.backup_root = os.path.join(base, "backups")

    # -- lifecycle ---------------------------------------------------------------------
    def compose(self, *args, check=True, input_=None):
        return docker("compose", "--project-directory", self.project_dir, "--project-name", self.name, *args,
                      check=check, input_=input_)

    def create(self):
        self.destroy()
        os.makedirs(self.project_dir, mode=0o700)
        shutil.copy(os.path.join(HERE, "files", "compose.yml"), os.path.join(self.project_dir, "compose.yml"))

    def write_env(self, version, image="ops-rollback-test/app", unhealthy=False):
        env = "APP_IMAGE=%s\nAPP_VERSION=%s\nWEB_PORT=%d\nAPP_SECRET=%s%s\nAPP_UNHEALTHY=%d\n" % (
            image, version, self.port, SECRET_PREFIX, version, 1 if unhealthy else 0)
        path = os.path.join(self.project_dir, ".env")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(env)

    def deploy(self, version, image="ops-rollback-test/app", unhealthy=False, wait=True):
        self.write_env(version, image, unhealthy)
        self.compose("up", "--detach", *(["--wait", "--wait-timeout", "60"] if wait else []))

    def seed(self):
        with open(SEED) as handle:
            self.compose("exec", "-T", "db", "psql", "-q", "-U", "postgres", "-d", "app", "-v", "ON_ERROR_STOP=1", input_=handle.read())

    def destroy(self):
        if os.path.isdir(self.project_dir):
            self.compose("down", "--volumes", "--remove-orphans", check=False)
        shutil.rmtree(self.base, ignore_errors=True)
        tags = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "--filter",
                      "reference=ops-rollback/%s_*" % self.name).stdout.split()
        if tags:
            docker("image", "rm", "--no-prune", *tags, check=False)

    # -- what is really there ------------------------------------------------------------
    def containers(self):
        """service -> (container id, image id) of running containers."""
        out = docker("ps", "--quiet", "--no-trunc", "--filter", "label=com.docker.compose.project=" + self.name).stdout.split()
        found = {}
        for info in json.loads(docker("inspect", *out).stdout) if out else []:
            found[info["Config"]["Labels"]["com.docker.compose.service"]] = (info["Id"], info["Image"])
        return found

    def version(self, attempts=20):
        for _attempt in range(attempts):
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/health" % self.port, timeout=2) as resp:
                    return json.loads(resp.read())["version"]
            except (OSError, ValueError):
                time.sleep(0.5)
        return None

    def rows(self):
        return self.compose("exec", "-T", "db", "psql", "-U", "postgres", "-d", "app", "-tAc",
                            "SELECT count(*) || ':' || md5(string_agg(id::text || name, ',' ORDER BY id)) FROM items").stdout.strip()

    def files_digest(self):
        digest = {}
        for name in sorted(os.listdir(self.project_dir)):
            with open(os.path.join(self.project_dir, name), "rb") as handle:
                digest[name] = hashlib.sha256(handle.read()).hexdigest()
        return digest

    def snapshot(self):
        return {"containers": self.containers(), "files": self.files_digest()}

    def ledger(self):
        with open(os.path.join(self.state_dir, self.name, "ledger.json")) as handle:
            return json.load(handle)

    def history(self):
        path = os.path.join(self.state_dir, self.name, "history.jsonl")
        if not os.path.exists(path):
            return []
        with open(path) as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def lock_exists(self):
        return os.path.exists(os.path.join(self.state_dir, self.name, "lock"))

    def release(self, version):
        return [r for r in self.ledger()["releases"] if r.get("version") == version][-1]

    # -- the collection's playbooks ---------------------------------------------------
    def vars(self, **extra):
        base = {
            "stack": self.name, "project_dir": self.project_dir, "state_dir": self.state_dir,
            "backup_root": self.backup_root,
            "health_urls": [{"url": "http://127.0.0.1:%d/health" % self.port, "status": 200, "retries": 5}],
            "integrity_checks": [{"name": "items", "service": "db",
                                  "argv": ["psql", "-U", "postgres", "-d", "app", "-tAc", "SELECT count(*) FROM items"]}],
        }
        base.update(extra)
        return base


def record(stack, version, verify=True):
    """Record what the stack runs as a release (ops.rollback.record_release)."""
    run = run_playbook("ops.rollback.record_release", stack.vars(version=version, verify=verify), json_output=False)
    assert run.rc == 0, run.stdout[-5000:] + run.stderr[-3000:]
