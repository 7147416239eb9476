"""A copy of the checkout's tracked and new files (ignored ones left out), for tools that must
see the collection at a path ending in ansible_collections/ops/rollback or must not see
.venv, .cache and build output."""
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def project_files():
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                         cwd=ROOT, capture_output=True, check=True).stdout.decode()
    return [f for f in out.split("\0") if f and os.path.lexists(os.path.join(ROOT, f))]


def copy_collection(dest_root):
    """Copy the project into <dest_root>/ansible_collections/ops/rollback; return that path."""
    dest = os.path.join(dest_root, "ansible_collections", "ops", "rollback")
    shutil.rmtree(dest, ignore_errors=True)
    for rel in project_files():
        src = os.path.join(ROOT, rel)
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
    # The copy is under .cache, which the checkout's git ignores: ansible-test asks git which
    # files to test and would skip them all. A repository of its own makes it test them.
    subprocess.run(["git", "init", "--quiet", dest], capture_output=True, check=True)
    return dest
