"""Netlify rollback: the API calls of one rollback, and the writes of a re-run, counted by the
local emulator built from Netlify's OpenAPI definition (tests/netlify_emulator), which also
counts any request the definition does not allow (violations).

One repetition: reset the emulator, run ops.rollback.netlify_rollback to the previous good
deploy (its default, steps_back=1; confirm=ROLLBACK), read the emulator's request log, then run it again for
the same deploy and count its writes (POST/PUT/PATCH/DELETE). Target: <= 5 calls, 0 writes.
"""
import json
import os
import sys
import tempfile
import urllib.request

from common import ROOT, median, playbook

sys.path.insert(0, os.path.join(ROOT, "tests"))
from netlify_emulator import Emulator  # noqa: E402  pylint: disable=wrong-import-position
from netlify_emulator.fixture_ids import SITE_ID  # noqa: E402  pylint: disable=wrong-import-position

TOKEN = "nfp_bench_token_not_secret"
WRITES = ("POST", "PUT", "PATCH", "DELETE")


def control(emulator, method, path):
    request = urllib.request.Request(emulator.url + path, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def api_requests(emulator):
    return [r for r in control(emulator, "GET", "/_emulator/requests")["requests"] if r["path"].startswith("/api/v1/")]


def once(emulator, workdir):
    control(emulator, "POST", "/_emulator/reset")
    variables = {"site_id": SITE_ID, "api_url": emulator.api_url, "confirm": "ROLLBACK",
                 "reason": "bench", "history_file": os.path.join(workdir, "history.jsonl")}
    env = {"NETLIFY_AUTH_TOKEN": TOKEN}
    wall, _proc = playbook("ops.rollback.netlify_rollback", variables, env=env)
    first = api_requests(emulator)
    published = control(emulator, "GET", "/_emulator/state")["sites"][SITE_ID]["published_deploy"]
    rerun = dict(variables, deploy_id=published)
    rerun.pop("confirm")
    playbook("ops.rollback.netlify_rollback", rerun, env=env)
    second = api_requests(emulator)[len(first):]
    return {"wall_s": round(wall, 2), "calls": len(first), "writes": sum(r["method"] in WRITES for r in first),
            "calls_by_operation": ["%s %s" % (r["method"], r["path"]) for r in first],
            "rerun_calls": len(second), "rerun_writes": sum(r["method"] in WRITES for r in second),
            "violations": control(emulator, "GET", "/_emulator/violations")["count"]}


def main(reps=3):
    with Emulator(tokens=[TOKEN]) as emulator, tempfile.TemporaryDirectory() as workdir:
        return [once(emulator, workdir) for _rep in range(reps)]


def rows(samples):
    calls, rerun_writes = median([s["calls"] for s in samples]), median([s["rerun_writes"] for s in samples])
    return {"calls": calls, "writes": median([s["writes"] for s in samples]), "rerun_calls": median([s["rerun_calls"] for s in samples]),
            "rerun_writes": rerun_writes, "violations": sum(s["violations"] for s in samples),
            "wall_s": median([s["wall_s"] for s in samples]), "calls_by_operation": samples[0]["calls_by_operation"],
            "target": "<= 5 calls; 0 writes on a re-run",
            "met": calls is not None and calls <= 5 and rerun_writes == 0}


def report_lines(nf):
    return [
        "| Netlify rollback: API calls of one rollback (writes among them); re-run writes | %s (%s); %s | | | <= 5; 0 | %s |" % (
            nf["calls"], nf["writes"], nf["rerun_writes"], "yes" if nf["met"] else "**NO**"),
    ]


if __name__ == "__main__":
    SAMPLES = main(int(os.environ.get("REPS", "1")))
    print(json.dumps({"rows": rows(SAMPLES), "samples": SAMPLES}, indent=1))
