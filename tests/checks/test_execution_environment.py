"""execution-environment.yml: `ansible-builder create` gives a complete build context offline,
and the collection step of that context (the same ansible-galaxy command the Containerfile
runs, from the same directory) installs ops.rollback without any Galaxy server."""
import ast
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import yaml

from repo_copy import ROOT

BIN = os.path.dirname(sys.executable)


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300, **kwargs)


def third_party_imports():
    """Top-level modules plugins/ imports that are neither the standard library nor Ansible."""
    found = set()
    for path in glob.glob(os.path.join(ROOT, "plugins", "**", "*.py"), recursive=True):
        with open(path) as handle:
            tree = ast.parse(handle.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in ("ansible", "ansible_collections")}


def requirement_names(path):
    with open(path) as handle:
        return {re.split(r"[<>=!~;\[ ]", line.strip())[0].lower() for line in handle
                if line.strip() and not line.lstrip().startswith("#")}


def test_ansible_builder_create_offline(tmp_path):
    with open(os.path.join(ROOT, "execution-environment.yml")) as handle:
        definition = yaml.safe_load(handle)
    assert definition["version"] == 3
    # The EE file as it is in the repository, beside the files it names, plus the tarball
    # `make ee` would have built at the path the definition expects.
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copy(os.path.join(ROOT, "execution-environment.yml"), work)
    shutil.copytree(os.path.join(ROOT, "ee"), work / "ee")
    (tarball_entry,) = [e for e in definition["additional_build_files"] if "ops-rollback" in e["src"]]
    dist = tmp_path / "dist"
    build = run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(dist), ROOT])
    assert build.returncode == 0, build.stdout + build.stderr
    (built,) = glob.glob(str(dist / "ops-rollback-*.tar.gz"))
    (work / tarball_entry["src"]).parent.mkdir(parents=True)
    shutil.copy(built, work / tarball_entry["src"])

    context = tmp_path / "context"
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ["PATH"])
    create = run([os.path.join(BIN, "ansible-builder"), "create", "--file", "execution-environment.yml",
                  "--context", str(context), "--output-filename", "Containerfile"], cwd=str(work), env=env)
    assert create.returncode == 0, create.stdout + create.stderr
    assert "No matches" not in create.stdout + create.stderr

    containerfile = (context / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="%s"' % definition["images"]["base_image"]["name"] in containerfile
    assert 'ARG ANSIBLE_GALAXY_CLI_COLLECTION_OPTS="--offline --no-deps"' in containerfile
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    core = definition["dependencies"]["ansible_core"]["package_pip"]
    assert core in containerfile
    build_dir = context / "_build"
    copied = build_dir / tarball_entry["dest"] / os.path.basename(tarball_entry["src"])
    with tarfile.open(copied) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        galaxy = yaml.safe_load(handle)
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == ("ops", "rollback", galaxy["version"])

    # Python: what plugins/ imports, community.docker's SDK, and the community package that
    # brings community.docker (the collection's declared dependency), pinned as in make test.
    python = requirement_names(build_dir / "requirements.txt")
    assert third_party_imports() <= python, third_party_imports() - python
    assert {"ansible", "docker", "requests"} <= python
    assert set(galaxy["dependencies"]) == {"community.docker"}
    pins = {line.strip() for line in (build_dir / "requirements.txt").read_text().splitlines()}
    with open(os.path.join(ROOT, "requirements", "current.txt")) as handle:
        current = {line.split("#")[0].strip() for line in handle}
    assert {p for p in pins if "==" in p} | {core} <= current, "the EE's pins differ from requirements/current.txt"
    assert third_party_imports() <= requirement_names(os.path.join(ROOT, "meta", "ee-requirements.txt"))
    assert (build_dir / "bindep.txt").exists()

    # The Containerfile's collection step, run here from /build's copy: offline, no Galaxy.
    installed = tmp_path / "collections"
    empty_cfg = tmp_path / "ansible.cfg"
    empty_cfg.write_text("[defaults]\n")
    install = run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline", "--no-deps",
                   "-r", "requirements.yml", "--collections-path", str(installed)],
                  cwd=str(build_dir), env=dict(env, ANSIBLE_CONFIG=str(empty_cfg)))
    assert install.returncode == 0, install.stdout + install.stderr
    with open(installed / "ansible_collections" / "ops" / "rollback" / "MANIFEST.json") as handle:
        assert json.load(handle)["collection_info"]["version"] == galaxy["version"]
