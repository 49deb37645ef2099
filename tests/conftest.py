"""Shared pytest set-up: `src/` on sys.path (as KNIME does), the knime.extension test double
when the real one is not importable, a per-session block library and experiment store (so no
test reads or writes ~/.tinyuop), and opt-in slow tests (--runslow)."""
import os
import shutil
import sys
import tempfile

import pytest

# Before anything imports the extension or uop_engine: blocklib reads TINYUOP_BLOCK_LIBRARY at
# import and the extension turns every block found there into a palette node, so blocks a user
# (or an earlier test run) saved in the home folder would change which nodes the tests see.
SESSION_HOME = tempfile.mkdtemp(prefix="tinyuop_tests_")
os.environ["TINYUOP_BLOCK_LIBRARY"] = os.path.join(SESSION_HOME, "blocks")
os.environ["TINYUOP_STORE"] = os.path.join(SESSION_HOME, "experiments.sqlite")

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


def pytest_unconfigure(config):
    shutil.rmtree(SESSION_HOME, ignore_errors=True)
