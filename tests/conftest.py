"""Shared pytest set-up: `src/` on sys.path (as KNIME does), the knime.extension test double
when the real one is not importable, and opt-in slow tests (--runslow)."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)

try:  # the real KNIME backend, when these tests run inside a KNIME Python environment
    import knime.extension  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(ROOT, "tests", "knime_double"))


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or os.environ.get("TINYUOP_RUNSLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
