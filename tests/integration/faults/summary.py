"""The fault-injection suite's summary table, printed at the end of the pytest run.

Rows: every case of this suite, and the faults that other suites already prove (listed in
REFERENCED with the test that proves each), with the outcome that test had in this run
("not run" when it was not collected, e.g. `pytest tests/integration/faults` alone).
"""
IT = "tests/integration/"
SUITE = IT + "faults/"

# fault -> node ID (or the start of the node IDs) of the test of another suite that proves it
REFERENCED = [
    ("target image missing (recreate)", IT + "rollback/test_recreate_rollback.py::test_missing_target_image_fails_before_any_change"),
    ("target unhealthy (recreate: recovered)", IT + "rollback/test_recreate_rollback.py::test_unhealthy_target_is_recovered_and_recorded"),
    ("target unhealthy (blue-green: refused)", IT + "blue_green/test_blue_green.py::test_unhealthy_release_is_refused_while_the_old_color_serves"),
    ("Caddy admin API down (blue-green)", IT + "blue_green/test_blue_green.py::test_admin_api_down_is_refused_before_any_change"),
    ("Caddy config changed concurrently (ETag)", IT + "caddy/test_caddy_upstream_live.py::test_concurrent_change_is_detected_through_the_etag_and_retried"),
    ("backup disk full, archive corrupted (molecule backup: verify_faults.yml)", IT + "test_molecule.py::test_molecule_scenario[backup"),
    ("Netlify 401", IT + "netlify/test_netlify_rollback.py::test_401_fails_clearly_and_the_token_never_shows_at_vvv"),
    ("Netlify 404", IT + "netlify/test_netlify_rollback.py::test_404_fails_clearly"),
    ("Netlify 429 and 500 (retried)", IT + "netlify/test_netlify_rollback.py::test_429_and_500_are_retried_and_succeed"),
    ("Netlify timeout (retried, recovered)", IT + "netlify/test_netlify_module_tasks.py::test_slow_answer_and_rate_limit_reset_are_retried"),
    ("Netlify 503 for good (retries bounded)", IT + "netlify/test_netlify_module_tasks.py::test_retries_are_bounded_and_nothing_is_written"),
]


class FaultSummary:
    def __init__(self):
        self.outcomes = {}            # node ID -> "passed" / "failed" / "xfailed" / "skipped"

    def add(self, report):
        nodeid = report.nodeid
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.outcomes[nodeid] = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome
        elif report.when == "teardown" and report.failed and self.outcomes.get(nodeid) == "passed":
            self.outcomes[nodeid] = "failed"

    def rows(self):
        rows = []
        for nodeid, outcome in self.outcomes.items():
            if nodeid.startswith(SUITE):
                rows.append((nodeid[len(SUITE):], outcome))
        for fault, prefix in REFERENCED:
            found = [o for n, o in self.outcomes.items() if n.startswith(prefix)]
            if not found:
                outcome = "not run"
            elif "failed" in found:
                outcome = "failed"
            elif "passed" in found:
                outcome = "passed"
            else:
                outcome = "skipped"
            rows.append(("%s  [%s]" % (fault, prefix.rsplit("::", maxsplit=1)[-1]), outcome))
        return rows

    def write(self, terminal):
        rows = self.rows()
        if not any(nodeid.startswith(SUITE) for nodeid in self.outcomes):
            return                     # the suite did not run in this session
        counts = {k: sum(1 for _n, o in rows if o == k) for k in ("passed", "failed", "xfailed", "skipped", "not run")}
        terminal.section("fault-injection suite")
        width = max(len(n) for n, _o in rows)
        terminal.write_line("%-*s  %s" % (width, "case", "outcome"))
        for name, outcome in rows:
            terminal.write_line("%-*s  %s" % (width, name, outcome))
        terminal.write_line("")
        terminal.write_line("| cases | passed | failed | xfailed (known bugs) | skipped | not run |")
        terminal.write_line("| %5d | %6d | %6d | %20d | %7d | %7d |" % (
            len(rows), counts["passed"], counts["failed"], counts["xfailed"], counts["skipped"], counts["not run"]))
