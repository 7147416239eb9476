"""Docs and release hygiene: the antsibull-docs site builds (a page per module and role, no Sphinx
warning), antsibull-docs' linter accepts the modules' and roles' documentation, and
antsibull-changelog accepts the fragments and can make a release from them."""
import glob
import html
import os
import re
import subprocess
import sys

import yaml

from repo_copy import ROOT, copy_collection

BIN = os.path.dirname(sys.executable)
MODULES = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py"))
                 if not os.path.basename(p).startswith("_"))
ROLES = sorted(os.path.basename(os.path.dirname(os.path.dirname(p)))
               for p in glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml")))


def tool_env():
    return dict(os.environ, PATH=BIN + os.pathsep + os.environ["PATH"], NO_COLOR="1",
                ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"))


def run(argv, **kwargs):
    kwargs.setdefault("cwd", ROOT)
    kwargs.setdefault("env", tool_env())
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


def module_options(name):
    source = open(os.path.join(ROOT, "plugins", "modules", name + ".py"), encoding="utf-8").read()
    doc = re.search(r'^DOCUMENTATION = r?"""(.*?)^"""', source, re.S | re.M).group(1)
    return sorted(yaml.safe_load(doc).get("options") or {})


def role_options(name):
    with open(os.path.join(ROOT, "roles", name, "meta", "argument_specs.yml"), encoding="utf-8") as f:
        specs = yaml.safe_load(f)["argument_specs"]
    return {entry: sorted(spec.get("options") or {}) for entry, spec in specs.items()}


def page_text(path):
    with open(path, encoding="utf-8") as f:
        return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", f.read())).split())


def test_docs_build_has_a_page_per_module_and_role(tmp_path):
    assert MODULES and ROLES
    dest = tmp_path / "docs"
    proc = run([os.path.join(ROOT, "scripts", "build_docs.sh"), str(dest)])
    # sphinx-build runs with -W: any warning (broken reference, bad RST) fails the build.
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    assert not re.search(r"WARNING|ERROR", proc.stdout + proc.stderr), proc.stdout + proc.stderr
    site = dest / "html"
    index = page_text(site / "index.html")
    for name in MODULES:
        page = site / (name + "_module.html")
        assert page.is_file(), "no page for module %s" % name
        text = page_text(page)
        assert "ops.rollback.%s module" % name in text
        for option in module_options(name):
            assert option in text, "module %s: option %s not on its page" % (name, option)
        assert name in index
    for name in ROLES:
        page = site / (name + "_role.html")
        assert page.is_file(), "no page for role %s" % name
        text = page_text(page)
        for entry, options in role_options(name).items():
            assert "Entry point %s" % entry in text, "role %s: entry point %s not on its page" % (name, entry)
            for option in options:
                assert option in text, "role %s: option %s not on its page" % (name, option)
        assert name in index


def test_docs_lint():
    # rstcheck is skipped: the build above renders the same RST through Sphinx with -W.
    proc = run([os.path.join(BIN, "antsibull-docs"), "lint-collection-docs", "--plugin-docs", "--skip-rstcheck",
                "--validate-collection-refs", "dependent", "--disallow-unknown-collection-refs", "."])
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout[-6000:] + proc.stderr[-3000:]


def test_changelog_fragments_lint():
    assert glob.glob(os.path.join(ROOT, "changelogs", "fragments", "*.yml"))
    proc = run([os.path.join(BIN, "antsibull-changelog"), "lint"])
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_changelog_release_works_on_a_copy(tmp_path):
    """`antsibull-changelog release` on a copy: it consumes every fragment and lists what is new."""
    copy = copy_collection(str(tmp_path))
    with open(os.path.join(copy, "galaxy.yml"), encoding="utf-8") as f:
        version = yaml.safe_load(f)["version"]
    with open(os.path.join(copy, "changelogs", "changelog.yaml"), encoding="utf-8") as f:
        released = yaml.safe_load(f).get("releases") or {}
    first_release = not released
    if version in released:  # galaxy.yml not bumped yet: release the next patch version
        major, minor, patch = version.split(".")
        version = "%s.%s.%d" % (major, minor, int(patch) + 1)
    fragments = glob.glob(os.path.join(copy, "changelogs", "fragments", "*.yml"))
    env = dict(tool_env(), ANSIBLE_COLLECTIONS_PATH=str(tmp_path))
    proc = run([os.path.join(BIN, "antsibull-changelog"), "release", "--version", version, "--date", "2026-01-01"],
               cwd=copy, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not glob.glob(os.path.join(copy, "changelogs", "fragments", "*.yml")), "fragments were not consumed"
    with open(os.path.join(copy, "changelogs", "changelog.yaml"), encoding="utf-8") as f:
        release = yaml.safe_load(f)["releases"][version]
    assert sorted(release["fragments"]) == sorted(os.path.basename(p) for p in fragments)
    with open(os.path.join(copy, "CHANGELOG.rst"), encoding="utf-8") as f:
        changelog = f.read()
    assert "v%s" % version in changelog
    if first_release:  # every module and role is new in the first release (version_added)
        assert sorted(m["name"] for m in release["modules"]) == MODULES
        assert sorted(r["name"] for r in release["objects"]["role"]) == ROLES
