"""PNG charts of a `make bench` run: the availability timeline of each switch (requests per
100 ms, ok stacked on failed, ok coloured by the version served, the switch window shaded) and
the ratios against their targets."""
import os

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=wrong-import-position

BUCKET_S = 0.1
VERSION_COLOURS = {"v1": "#1f77b4", "v2": "#2ca02c"}
OTHER_COLOUR, FAILED_COLOUR = "#9467bd", "#d62728"


def version_of(body):
    for version in VERSION_COLOURS:
        if version in body:
            return version
    return "other"


def buckets(timeline):
    """{bucket index: {"failed": n, version: n, ...}} of (t, ok, body) events."""
    found = {}
    for t, ok, body in timeline:
        slot = found.setdefault(int(t / BUCKET_S), {})
        key = version_of(body) if ok else "failed"
        slot[key] = slot.get(key, 0) + 1
    return found


def timeline_chart(path, title, timeline, window):
    counts = buckets(timeline)
    if not counts:
        return None
    xs = sorted(counts)
    keys = ["failed"] + sorted({k for c in counts.values() for k in c if k != "failed"})
    fig, axis = plt.subplots(figsize=(10, 3.2))
    bottom = [0] * len(xs)
    for key in keys:
        heights = [counts[x].get(key, 0) for x in xs]
        colour = FAILED_COLOUR if key == "failed" else VERSION_COLOURS.get(key, OTHER_COLOUR)
        axis.bar([x * BUCKET_S for x in xs], heights, width=BUCKET_S, bottom=bottom, color=colour, align="edge",
                 label="failed" if key == "failed" else "ok, serves %s" % key)
        bottom = [b + h for b, h in zip(bottom, heights)]
    if window:
        axis.axvspan(window[0], window[1], color="#cccccc", alpha=0.4, label="switch (start to end)")
    axis.set_xlabel("seconds since the probe started")
    axis.set_ylabel("requests per 100 ms")
    axis.set_title(title)
    axis.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return os.path.basename(path)


def ratio_chart(path, ratios):
    """ratios: [(label, value, target, lower_is_better)]."""
    shown = [r for r in ratios if r[1] is not None]
    if not shown:
        return None
    fig, axis = plt.subplots(figsize=(8, 0.6 + 0.55 * len(shown)))
    for row, (label, value, target, lower_is_better) in enumerate(shown):
        met = value <= target if lower_is_better else value >= target
        axis.barh(row, value, color="#2ca02c" if met else FAILED_COLOUR)
        axis.plot([target, target], [row - 0.4, row + 0.4], color="black", linewidth=2)
        axis.text(value, row, " %s (target %s %s)" % (value, "<=" if lower_is_better else ">=", target), va="center", fontsize=8)
    axis.set_yticks(range(len(shown)))
    axis.set_yticklabels([r[0] for r in shown], fontsize=8)
    axis.set_xlabel("ratio (black line: target)")
    axis.set_xlim(0, max(max(r[1] for r in shown), max(r[2] for r in shown)) * 1.6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return os.path.basename(path)


def runbook_window(sample):
    """The runbook's probe starts 2 s before its switch (`sleep 2; t0=...`)."""
    return [2.0, 2.0 + float(sample["wall_s"])] if sample and sample.get("wall_s") else None


def first(samples):
    """The first sample that has a timeline."""
    return next((s for s in samples if s and s.get("timeline")), None)


def write_all(out, results, recreate_samples, blue_green_samples):
    """Writes the PNGs into `out`; returns their file names."""
    written = []
    series = [
        ("recreate_collection.png", "recreate rollback: ops.rollback.rollback", first(recreate_samples["collection"]), "window"),
        ("recreate_runbook.png", "recreate rollback: manual runbook", first(recreate_samples["runbook"]), "runbook"),
        ("blue_green_collection.png", "blue-green switch through Caddy: ops.rollback.blue_green_switch",
         first(blue_green_samples["collection"]), "window"),
        ("blue_green_runbook.png", "blue-green switch through Caddy: manual runbook (caddy reload)",
         first(blue_green_samples["runbook"]), "runbook"),
    ]
    for name, title, sample, how in series:
        if sample:
            window = sample.get("window") if how == "window" else runbook_window(sample)
            written.append(timeline_chart(os.path.join(out, name), title, sample["timeline"], window))
    rc, bk, bg = results.get("recreate", {}), results.get("backup", {}), results.get("blue_green", {})
    ratios = [
        ("recreate: longest outage, collection / runbook", rc.get("outage_ratio"), 0.5, True),
        ("blue-green: wall time, collection / runbook", bg.get("wall_ratio"), 1.2, True),
        ("backup: MB/s, collection / raw tar|zstd", bk.get("ratio_to_raw"), 0.75, False),
    ]
    fleet = results.get("fleet") or {}
    ratios.append(("fleet: 20 hosts / 1 host, wall time", fleet.get("ratio"), 3.0, True))
    if fleet.get("one_batch_ratio") is not None:
        ratios.append(("fleet, one batch: 20 hosts / 1 host", fleet.get("one_batch_ratio"), 3.0, True))
    written.append(ratio_chart(os.path.join(out, "ratios.png"), ratios))
    return [w for w in written if w]
