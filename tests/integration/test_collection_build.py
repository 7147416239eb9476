"""`ansible-galaxy collection build` gives a tarball that installs and works: the installed
copy (not the checkout) runs the FQCN playbook ops.rollback.verify against a real stack."""
import glob
import json
import os
import subprocess
import sys

from ansible_run import ROOT

BIN = os.path.dirname(sys.executable)
PORT = 18630
COMPOSE = """services:
  web:
    image: ops-rollback-test/app:v1
    ports: ["127.0.0.1:%d:8080"]
""" % PORT


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


def test_built_collection_installs_and_runs(tmp_path):
    dist = tmp_path / "dist"
    build = run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(dist), ROOT])
    assert build.returncode == 0, build.stdout + build.stderr
    tarball = glob.glob(str(dist / "ops-rollback-*.tar.gz"))
    assert len(tarball) == 1
    installed = tmp_path / "collections"
    # --force: the checkout itself is on the configured collections path and would count as installed.
    empty_cfg = tmp_path / "ansible.cfg"
    empty_cfg.write_text("[defaults]\n")
    clean_env = dict(os.environ, ANSIBLE_CONFIG=str(empty_cfg), ANSIBLE_COLLECTIONS_PATH=str(installed))
    install = run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "--force",
                   "-p", str(installed), tarball[0]], env=clean_env, cwd=str(tmp_path))
    assert install.returncode == 0, install.stdout + install.stderr
    assert (installed / "ansible_collections" / "ops" / "rollback" / "MANIFEST.json").exists()
    assert not (installed / "ansible_collections" / "ops" / "rollback" / ".venv").exists()

    project = tmp_path / "stack"
    project.mkdir()
    (project / "compose.yml").write_text(COMPOSE)
    compose = ["docker", "compose", "--project-directory", str(project), "--project-name", "opsbuild"]
    assert run(compose + ["up", "--detach", "--wait"]).returncode == 0
    try:
        env = dict(clean_env, PATH=BIN + os.pathsep + os.environ["PATH"])
        doc = run([os.path.join(BIN, "ansible-doc"), "-t", "role", "ops.rollback.verify"], env=env, cwd=str(tmp_path))
        assert doc.returncode == 0 and "verify_project_dir" in doc.stdout, doc.stderr
        play = run([os.path.join(BIN, "ansible-playbook"), "ops.rollback.verify",
                    "-i", os.path.join(ROOT, "tests", "integration", "inventory.yml"),
                    "-e", json.dumps({"stack": "opsbuild", "project_dir": str(project),
                                      "health_urls": [{"url": "http://127.0.0.1:%d/health" % PORT}]})],
                   env=env, cwd=str(tmp_path))
        assert play.returncode == 0, play.stdout[-4000:] + play.stderr[-2000:]
        assert str(installed) in run([os.path.join(BIN, "ansible-galaxy"), "collection", "list", "ops.rollback"],
                                     env=env).stdout
    finally:
        run(compose + ["down", "--volumes"])
