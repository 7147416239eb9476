"""Availability probe for the benchmarks: W threads GET a URL until told to stop, and every
request's outcome is kept (time, ok, what the body said), so a benchmark can report failed
requests, the longest outage and which versions served, and draw a timeline.

Same measure as ../shared/baseline/probe.py, usable in-process: start(), then stop().
Only ever pointed at 127.0.0.1.
"""
import threading
import time
import urllib.request


class Probe:
    def __init__(self, url, workers=4, max_s=300.0, pause_s=0.005):
        if not url.startswith("http://127.0.0.1:"):
            raise ValueError("the probe only targets 127.0.0.1, not %s" % url)
        self.url = url
        self.workers = workers
        self.max_s = max_s
        self.pause_s = pause_s
        self.events = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self.t0 = None

    def _work(self):
        while not self._stop.is_set() and time.monotonic() - self.t0 < self.max_s:
            t = time.monotonic() - self.t0
            try:
                with urllib.request.urlopen(self.url, timeout=2) as resp:
                    body = resp.read()
                    ok = resp.status == 200
            except Exception as exc:  # pylint: disable=broad-except  # every failure is an unavailable moment
                ok, body = False, str(exc).encode()
            with self._lock:
                self.events.append((t, ok, body[:40].decode(errors="replace").strip()))
            time.sleep(self.pause_s)

    def start(self):
        self.t0 = time.monotonic()
        self._threads = [threading.Thread(target=self._work, daemon=True) for _worker in range(self.workers)]
        for thread in self._threads:
            thread.start()
        return self

    def mark(self):
        """Seconds since start, to place events (switch start/end) on the timeline."""
        return time.monotonic() - self.t0

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join()
        return summary(self.events)


def summary(events):
    """total, failed, longest outage (longest span between two successes with failures in it),
    and the bodies served, as the baseline probe reports them."""
    events = sorted(events)
    failed = [e for e in events if not e[1]]
    outage, last_ok, had_fail = 0.0, None, False
    for t, ok, _body in events:
        if ok:
            if had_fail and last_ok is not None:
                outage = max(outage, t - last_ok)
            last_ok, had_fail = t, False
        else:
            had_fail = True
    if had_fail and last_ok is not None:
        outage = max(outage, events[-1][0] - last_ok)
    served = {}
    for _t, ok, body in events:
        if ok:
            served[body] = served.get(body, 0) + 1
    return {"total": len(events), "failed": len(failed), "longest_outage_s": round(outage, 3), "served": served,
            "first_fail": failed[0][2] if failed else None}


def version_changes(events):
    """How many times the served body changed, in time order (a clean switch changes once)."""
    changes, last = 0, None
    for _t, ok, body in sorted(events):
        if not ok:
            continue
        if last is not None and body != last:
            changes += 1
        last = body
    return changes
