"""pytest plugin loaded by `cargo xtask test` (-p xtask_summary).

Counts outcomes, including deselected tests (which junit XML does not record), and
writes them as JSON to the file named by $XTASK_PYTEST_SUMMARY when the session ends.
"""

import json
import os

_counts = {"passed": 0, "failed": 0, "skipped": 0, "deselected": 0, "errors": 0, "collected": 0}


def pytest_deselected(items):
    _counts["deselected"] += len(items)


def pytest_collection_finish(session):
    _counts["collected"] = len(session.items) + _counts["deselected"]


def pytest_runtest_logreport(report):
    if report.when == "call":
        if report.passed:
            _counts["passed"] += 1
        elif report.failed:
            _counts["failed"] += 1
        elif report.skipped:
            _counts["skipped"] += 1
    elif report.skipped:
        _counts["skipped"] += 1
    elif report.failed:
        _counts["errors"] += 1


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("XTASK_PYTEST_SUMMARY")
    if not path:
        return
    data = dict(_counts, exitstatus=int(exitstatus))
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)
