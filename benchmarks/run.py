"""`make bench`: every benchmark side by side with the manual runbook, in one run.

Writes benchmarks/results/<UTC date>/results.json and report.md. Figures are medians of REPS
repetitions (default 3). Benchmarks are not tests: nothing here asserts a timing; the report
says plainly where a target is missed.
"""
import datetime
import json
import os
import platform
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ansible_overhead  # noqa: E402  (path set above)
import blue_green_switch  # noqa: E402
import charts  # noqa: E402
import fleet  # noqa: E402
import netlify_calls  # noqa: E402
import recreate_outage  # noqa: E402
from common import HERE, ROOT, median, run  # noqa: E402


def machine():
    def version(argv):
        try:
            return run(argv, check=False).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "not found"
    mem_kb = int(open("/proc/meminfo").read().split()[1])
    return {
        "cores": os.cpu_count(), "memory_gib": round(mem_kb / 1048576, 1), "kernel": platform.release(),
        "python": platform.python_version(),
        "docker": version(["docker", "version", "--format", "{{.Server.Version}}"]),
        "compose": version(["docker", "compose", "version", "--short"]),
        "caddy": version(["caddy", "version"]),
        "ansible_core": version([os.path.join(os.path.dirname(sys.executable), "ansible"), "--version"]),
    }


def r2(value):
    return round(value, 2) if isinstance(value, float) else value


def recreate_rows(samples):
    coll = [s["probe"]["longest_outage_s"] for s in samples["collection"]]
    book = [s["probe"]["longest_outage_s"] for s in samples["runbook"] if s]
    c_out, b_out = median(coll), median(book)
    ratio = round(c_out / b_out, 2) if c_out is not None and b_out else None
    return {
        "collection_outage_s": c_out, "runbook_outage_s": b_out, "outage_ratio": ratio,
        "collection_failed": median([s["probe"]["failed"] for s in samples["collection"]]),
        "runbook_failed": median([s["probe"]["failed"] for s in samples["runbook"] if s]),
        "collection_wall_s": r2(median([s["wall_s"] for s in samples["collection"]])),
        "runbook_wall_s": r2(median([s["wall_s"] for s in samples["runbook"] if s])),
        "collection_compose_up_s": median([s["compose_up_s"] for s in samples["collection"]]),
        "target": "outage ratio <= 0.5", "met": ratio is not None and ratio <= 0.5,
    }


def backup_rows(reps):
    """benchmarks/backup_throughput.py: the collection's volume backup vs raw tar|zstd vs the
    manual tar czf runbook, on 512 MB of half-random data, all in one run."""
    proc = subprocess.run([sys.executable, os.path.join(HERE, "backup_throughput.py"), "--reps", str(reps)],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(proc.stdout)


def report(results):
    m = results["machine"]
    rc = results["recreate"]
    lines = [
        "# ops.rollback benchmarks, %s" % results["date"], "",
        "Machine: %s cores, %s GiB, kernel %s; Docker %s, Compose %s, %s; %s." % (
            m["cores"], m["memory_gib"], m["kernel"], m["docker"], m["compose"], m["caddy"], m["ansible_core"]),
        "Each figure is the median of %d repetitions, measured side by side in this one run." % results["reps"], "",
        "| what | collection | manual runbook | ratio | target | met |", "|---|---|---|---|---|---|",
        "| recreate rollback: longest outage (probe) | %s s | %s s | %s | <= 0.5 | %s |" % (
            rc["collection_outage_s"], rc["runbook_outage_s"], rc["outage_ratio"], "yes" if rc["met"] else "**NO**"),
        "| recreate rollback: failed requests | %s | %s | | | |" % (rc["collection_failed"], rc["runbook_failed"]),
        "| recreate rollback: wall time | %s s | %s s | | | |" % (rc["collection_wall_s"], rc["runbook_wall_s"]),
    ]
    bk = results["backup"]
    lines.append("| volume backup (%d MB), MB/s | %s | %s (tar czf) | %sx raw tar-zstd (%s MB/s) | >= 0.75x raw | %s |" % (
        bk["size_mb"], bk["collection_mb_s"], bk["manual_tar_czf_mb_s"], bk["ratio_to_raw"], bk["raw_tar_zstd_mb_s"],
        "yes" if bk["met"] else "**NO**"))
    lines.append("| volume backup through the Engine API (docker cp), MB/s | %s | | %sx raw | | |" % (
        bk["collection_api_mb_s"], bk["api_ratio_to_raw"]))
    lines.append("| volume restore, MB/s | %s | %s s (manual restore) | | | |" % (
        bk["collection_restore_mb_s"], r2(bk["manual_restore_s"])))
    lines += blue_green_switch.report_lines(results["blue_green"]) if "blue_green" in results else []
    lines += ansible_overhead.report_lines(results["ansible_overhead"]) if "ansible_overhead" in results else []
    lines += fleet.report_lines(results["fleet"]) if "fleet" in results else []
    lines += netlify_calls.report_lines(results["netlify"]) if "netlify" in results else []
    lines += ["", "The recreate rollback's wall time includes the whole flow (lock, plan, backup of the config, "
              "execute, verify, record); the outage is what the probe saw. `docker compose up` inside it took %s s (median)."
              % rc["collection_compose_up_s"], ""]
    lines += ["![%s](%s)" % (name[:-4].replace("_", " "), name) for name in results.get("charts", [])]
    return "\n".join(lines)


def rerender(out):
    """Write report.md again from results.json (after a change to the report's wording)."""
    with open(os.path.join(out, "results.json")) as handle:
        results = json.load(handle)
    results["recreate"]["runbook_wall_s"] = r2(results["recreate"]["runbook_wall_s"])
    with open(os.path.join(out, "report.md"), "w") as handle:
        handle.write(report(results))


def without_timelines(samples):
    """Samples as results.json keeps them: the probes' per-request timelines go to the charts."""
    if isinstance(samples, list):
        return [without_timelines(s) for s in samples]
    if isinstance(samples, dict):
        return {k: without_timelines(v) for k, v in samples.items() if k != "timeline"}
    return samples


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--rerender":
        rerender(sys.argv[2])
        return
    reps = int(os.environ.get("REPS", "3"))
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    out = os.path.join(HERE, "results", date)
    os.makedirs(out, exist_ok=True)
    results = {"date": date, "reps": reps, "machine": machine()}
    recreate_samples = recreate_outage.main(reps)
    results["recreate"] = recreate_rows(recreate_samples)
    results["backup"] = backup_rows(reps)
    blue_green_samples = blue_green_switch.main(reps)
    results["blue_green"] = blue_green_switch.rows(blue_green_samples)
    overhead_samples = ansible_overhead.main(reps)
    results["ansible_overhead"] = ansible_overhead.rows(overhead_samples)
    fleet_samples = fleet.main(reps)
    results["fleet"] = fleet.rows(fleet_samples)
    netlify_samples = netlify_calls.main(reps)
    results["netlify"] = netlify_calls.rows(netlify_samples)
    results["charts"] = charts.write_all(out, results, recreate_samples, blue_green_samples)
    with open(os.path.join(out, "results.json"), "w") as handle:
        json.dump(dict(results, backup={k: v for k, v in results["backup"].items() if k != "samples"},
                       backup_samples=results["backup"]["samples"],
                       recreate_samples=without_timelines(recreate_samples["collection"]),
                       runbook_samples=without_timelines(recreate_samples["runbook"]),
                       blue_green_samples=without_timelines(blue_green_samples),
                       ansible_overhead_samples=overhead_samples, fleet_samples=fleet_samples,
                       netlify_samples=netlify_samples),
                  handle, indent=2, default=str)
    text = report(results)
    with open(os.path.join(out, "report.md"), "w") as handle:
        handle.write(text)
    print(text)
    print("written: %s" % out)


if __name__ == "__main__":
    main()
