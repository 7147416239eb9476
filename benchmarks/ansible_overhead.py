"""Ansible overhead of a rollback: the wall time of a full ops.rollback.rollback (recreate, the
recreate benchmark's stack) minus the time spent inside docker/compose commands.

Every docker command of the collection goes through the `docker` CLI found on PATH, so a shim
put first on PATH logs each command's start and end; the union of those intervals is the
docker/compose time, the rest is Ansible's (and the collection's own Python). Target: <= 5 s.
"""
import json
import os
import stat
import tempfile

from common import median, playbook, run
from recreate_outage import compose, prepare, variables

SHIM = """#!/bin/bash
# Logs when each docker command starts and ends (benchmarks/ansible_overhead.py).
start=$(date +%%s.%%N)
%(docker)s "$@"
rc=$?
echo "$start $(date +%%s.%%N) $1 $2" >> %(log)s
exit $rc
"""


def union_seconds(intervals):
    total, end = 0.0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


def once():
    prepare()
    with tempfile.TemporaryDirectory() as shim_dir:
        log = os.path.join(shim_dir, "docker.log")
        path = os.path.join(shim_dir, "docker")
        with open(path, "w") as handle:
            handle.write(SHIM % {"docker": run(["bash", "-c", "command -v docker"]).stdout.strip(), "log": log})
        os.chmod(path, stat.S_IRWXU)
        wall, _proc = playbook("ops.rollback.rollback", variables(confirm="ROLLBACK", backup_volumes=False, reason="bench"),
                               env={"PATH": shim_dir + os.pathsep + os.environ["PATH"]})
        with open(log) as handle:
            lines = [line.split() for line in handle if line.strip()]
    compose("down", "--volumes")
    intervals = [(float(line[0]), float(line[1])) for line in lines]
    docker_s = union_seconds(intervals)
    by_command = {}
    for line in lines:
        key = " ".join(line[2:4])
        by_command[key] = round(by_command.get(key, 0.0) + float(line[1]) - float(line[0]), 2)
    return {"wall_s": round(wall, 2), "docker_s": round(docker_s, 2), "overhead_s": round(wall - docker_s, 2),
            "docker_commands": len(lines), "docker_s_by_command": by_command}


def main(reps=3):
    return [once() for _rep in range(reps)]


def rows(samples):
    overhead = median([s["overhead_s"] for s in samples])
    return {"wall_s": median([s["wall_s"] for s in samples]), "docker_s": median([s["docker_s"] for s in samples]),
            "overhead_s": overhead, "docker_commands": median([s["docker_commands"] for s in samples]),
            "target": "<= 5 s", "met": overhead is not None and overhead <= 5}


def report_lines(ov):
    return ["| Ansible overhead of a recreate rollback: wall time minus docker/compose time (%s docker commands) | %s s (%s s - %s s) | | | <= 5 s | %s |" % (
        ov["docker_commands"], ov["overhead_s"], ov["wall_s"], ov["docker_s"], "yes" if ov["met"] else "**NO**")]


if __name__ == "__main__":
    print(json.dumps(main(int(os.environ.get("REPS", "1"))), indent=1))
