"""Backup throughput of one volume, side by side, in one run (issue 3's benchmark).

On a volume of SIZE_MB (default 512) half-random, half-repetitive data (the same recipe as
baseline/manual_backup.sh), it times:

* the collection: ops.rollback.compose_backup run through Ansible on a Compose project that
  mounts the volume, once per volume_source (mountpoint: GNU tar on the mount point; api:
  docker cp from a never-started helper container). The MB/s is the volume's archive step as
  the module times it (tar -> zstd -T all cores -> sha256 -> file); the total includes the
  module's other steps (config, images, manifest, read-back of every checksum, fsync);
* raw `tar -C <mountpoint> -cf - . | zstd -T2 -3` of the same data into a file;
* the manual runbook, baseline/manual_backup.sh (`tar czf` in a busybox helper container;
  it fills its own volume of the same size and recipe);
* the collection's restore of the same volume (compose_restore, no safety backup).

Prints one JSON document; the target is collection MB/s >= 0.75 x raw `tar | zstd`. Figures
are medians of --reps repetitions, the three backups interleaved; all data is in the page
cache for all of them.

    .venv/bin/python benchmarks/backup_throughput.py [--size-mb 512] [--reps 3] [--output FILE]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import ROOT, VENV_BIN, baseline_script, build_baseline_images, median, run  # noqa: E402

PROJECT = "opsbench"
VOLUME = PROJECT + "_data"
IMAGE = "runbook-baseline/busybox:1"
FILL = ("dd if=/dev/urandom of=/data/random.bin bs=1M count={half} 2>/dev/null; "
        "i=0; while [ $i -lt {half} ]; do yes \"row $i some repetitive log line with a timestamp "
        "2026-11-21T22:00:00Z level=info\" | head -c 1048576 > /data/log_$i.txt; i=$((i+1)); done")


def compose_file(directory):
    with open(os.path.join(directory, "compose.yml"), "w", encoding="utf-8") as handle:
        handle.write("services:\n  data:\n    image: %s\n    command: [sleep, '3600']\n"
                     "    volumes: [data:/data]\nvolumes:\n  data: {}\n" % IMAGE)


def ansible_module(module, args):
    """Run one module on localhost through Ansible; returns (wall seconds, result)."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    argv = [os.path.join(VENV_BIN, "ansible"), "localhost", "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=" + sys.executable, "-m", module, "-a", json.dumps(args)]
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    try:
        result = json.loads(proc.stdout[proc.stdout.index("{"):])["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        raise RuntimeError("%s gave no result:\n%s\n%s" % (module, proc.stdout[-3000:], proc.stderr[-2000:]))
    if result.get("failed"):
        raise RuntimeError("%s failed: %s" % (module, result.get("msg")))
    return wall, result


def collection_backup(project_dir, backup_root, size_mb, method):
    wall, result = ansible_module("ops.rollback.compose_backup", {
        "project_dir": project_dir, "project_name": PROJECT, "stack": PROJECT, "backup_root": backup_root,
        "volume_source": method, "keep": 1})
    volume = result["timings"]["volumes"]["data"]
    assert volume["method"] == method, volume
    return {"method": method, "archive_s": volume["seconds"], "mb_s": round(size_mb / volume["seconds"], 1),
            "module_total_s": result["timings"]["total_s"], "verify_s": result["timings"].get("verify_s"),
            "ansible_wall_s": round(wall, 2), "archive_mb": round(volume["stored_bytes"] / 1048576.0, 1),
            "backup_id": result["backup_id"]}


def collection_restore(project_dir, backup_root, size_mb):
    wall, result = ansible_module("ops.rollback.compose_restore", {
        "project_dir": project_dir, "project_name": PROJECT, "stack": PROJECT, "backup_root": backup_root,
        "safety_backup": False, "start_services": False})
    return {"refill_s": result["timings"]["volumes"]["data"], "check_s": result["timings"]["check_s"],
            "mb_s": round(size_mb / result["timings"]["volumes"]["data"], 1), "ansible_wall_s": round(wall, 2)}


def raw_tar_zstd(mountpoint, target, size_mb):
    started = time.monotonic()
    with open(target, "wb") as out:
        tar = subprocess.Popen(["tar", "-C", mountpoint, "-cf", "-", "."], stdout=subprocess.PIPE)
        zstd = subprocess.Popen(["zstd", "-T2", "-3", "-q", "-c"], stdin=tar.stdout, stdout=out)
        tar.stdout.close()
        if zstd.wait() != 0 or tar.wait() != 0:
            raise RuntimeError("tar | zstd failed")
    seconds = time.monotonic() - started
    size = os.path.getsize(target)
    os.unlink(target)
    return {"seconds": round(seconds, 3), "mb_s": round(size_mb / seconds, 1), "archive_mb": round(size / 1048576.0, 1)}


def manual_backup(size_mb):
    proc = run(["bash", baseline_script("manual_backup.sh")], env=dict(os.environ, SIZE_MB=str(size_mb)))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--size-mb", type=int, default=int(os.environ.get("SIZE_MB", "512")))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--output")
    args = parser.parse_args()
    half = args.size_mb // 2
    build_baseline_images()
    work = tempfile.mkdtemp(prefix="opsbench-backup-")
    project_dir = os.path.join(work, "stack")
    os.makedirs(project_dir)
    compose_file(project_dir)
    compose = ["docker", "compose", "--project-directory", project_dir, "--project-name", PROJECT]
    samples = {"mountpoint": [], "api": [], "raw": [], "manual": [], "restore": []}
    try:
        run(compose + ["down", "--volumes"], check=False)
        run(compose + ["create"])
        run(["docker", "run", "--rm", "-v", VOLUME + ":/data", IMAGE, "sh", "-c", FILL.format(half=half)])
        mountpoint = run(["docker", "volume", "inspect", "-f", "{{.Mountpoint}}", VOLUME]).stdout.strip()
        backup_root = os.path.join(work, "backups")
        for _rep in range(args.reps):
            samples["raw"].append(raw_tar_zstd(mountpoint, os.path.join(work, "raw.tar.zst"), args.size_mb))
            samples["mountpoint"].append(collection_backup(project_dir, backup_root, args.size_mb, "mountpoint"))
            samples["api"].append(collection_backup(project_dir, backup_root, args.size_mb, "api"))
            samples["manual"].append(manual_backup(args.size_mb))
        samples["restore"].append(collection_restore(project_dir, backup_root, args.size_mb))
    finally:
        run(compose + ["down", "--volumes"], check=False)
        shutil.rmtree(work, ignore_errors=True)

    raw = median([s["mb_s"] for s in samples["raw"]])
    best = median([s["mb_s"] for s in samples["mountpoint"]])
    api = median([s["mb_s"] for s in samples["api"]])
    manual = median([s["backup_mb_s"] for s in samples["manual"]])
    report = {
        "benchmark": "backup_throughput",
        "size_mb": args.size_mb,
        "reps": args.reps,
        "collection_mb_s": best,
        "collection_api_mb_s": api,
        "raw_tar_zstd_mb_s": raw,
        "manual_tar_czf_mb_s": manual,
        "ratio_to_raw": round(best / raw, 2) if raw else None,
        "api_ratio_to_raw": round(api / raw, 2) if raw else None,
        "speedup_over_manual": round(best / manual, 1) if manual else None,
        "collection_module_total_s": median([s["module_total_s"] for s in samples["mountpoint"]]),
        "collection_restore_mb_s": median([s["mb_s"] for s in samples["restore"]]),
        "manual_restore_s": median([s["restore_s"] for s in samples["manual"]]),
        "target": "collection_mb_s >= 0.75 x raw_tar_zstd_mb_s",
        "met": bool(raw and best >= 0.75 * raw),
        "samples": samples,
    }
    text = json.dumps(report, indent=2)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
