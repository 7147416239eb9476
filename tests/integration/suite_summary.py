"""A summary table (cases, passed, failed) for a suite, printed at the end of the pytest run.

A suite's conftest.py makes one SuiteSummary and forwards two hooks to it:

    SUMMARY = SuiteSummary("bad-input", "tests/integration/bad_input/")
    def pytest_runtest_logreport(report): SUMMARY.add(report)
    def pytest_terminal_summary(terminalreporter): SUMMARY.write(terminalreporter)
"""


class SuiteSummary:
    def __init__(self, title, path_part):
        self.title = title
        self.path_part = path_part
        self.outcomes = {}

    def add(self, report):
        if self.path_part not in report.nodeid:
            return
        # a case counts once: failed if any phase failed, skipped if its setup skipped it
        if report.failed:
            self.outcomes[report.nodeid] = "failed"
        elif report.skipped and report.when == "setup":
            self.outcomes[report.nodeid] = "skipped"
        elif report.when == "call" and self.outcomes.get(report.nodeid) != "failed":
            self.outcomes[report.nodeid] = "passed"

    def write(self, terminalreporter):
        if not self.outcomes:
            return
        counts = {kind: sum(1 for o in self.outcomes.values() if o == kind) for kind in ("passed", "failed", "skipped")}
        tr = terminalreporter
        tr.section("%s suite" % self.title)
        tr.write_line("| suite | cases | passed | failed | skipped |")
        tr.write_line("|---|---|---|---|---|")
        row = (self.title, len(self.outcomes), counts["passed"], counts["failed"], counts["skipped"])
        tr.write_line("| %s | %d | %d | %d | %d |" % row)
        for nodeid, outcome in sorted(self.outcomes.items()):
            if outcome == "failed":
                tr.write_line("FAILED %s" % nodeid)
