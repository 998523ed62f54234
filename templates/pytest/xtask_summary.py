"""pytest plugin loaded by `cargo xtask test` (-p xtask_summary).

Selects the app's GPU tests as $XTASK_PYTEST_GPU says (JSON: mode "deselect" leaves out the
tests that match, mode "only" keeps just those; a test matches when it carries one of the
markers, or its node id without [parameters] matches one of the fnmatch patterns). Counts
outcomes, including deselected tests and collection errors (which junit XML does not
record), and writes them as JSON to the file named by $XTASK_PYTEST_SUMMARY at the end.
"""

import fnmatch
import json
import os

import pytest

_counts = {"passed": 0, "failed": 0, "skipped": 0, "deselected": 0, "errors": 0, "collected": 0}


def _matches(item, markers, node_ids):
    if any(item.get_closest_marker(m) is not None for m in markers):
        return True
    base = item.nodeid.split("[", 1)[0]
    return any(fnmatch.fnmatchcase(base, p) for p in node_ids)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    spec = os.environ.get("XTASK_PYTEST_GPU")
    if not spec:
        return
    spec = json.loads(spec)
    keep_matching = spec["mode"] == "only"
    keep, drop = [], []
    for item in items:
        hit = _matches(item, spec["markers"], spec["node_ids"])
        (keep if hit == keep_matching else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_deselected(items):
    _counts["deselected"] += len(items)


def pytest_collectreport(report):
    if report.failed:
        _counts["errors"] += 1


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
