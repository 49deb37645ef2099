"""Regression tests for the escapes found by the sandbox audit: each attack is reproduced and
must be stopped with a clear reason.

1. switching the guard off (closure state found through gc), `operator.attrgetter` around the
   dunder screen, `collections._sys` / `random._os`;
2. forging a passing result on the report pipe; (2b, third review) frames reached through
   `functools.update_wrapper`, a pytest plugin flipping outcomes, a library patched through a
   parameter, modules written at run time;
3. listing, linking and making FIFOs outside the sandbox folder.

Runtime attacks run with the static screen off (`screen=False`), so the audit hook and the
kernel fences (`llm.oslimits`) are tested on their own; the screen is tested separately.
"""
import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from llm import oslimits
from llm.sandbox import SandboxResult, _judge, run_tests
from llm.screen import screen_source

LINUX = sys.platform.startswith("linux")
SECCOMP = LINUX and platform.machine().lower() in ("x86_64", "amd64", "aarch64", "arm64")
LANDLOCK = oslimits.landlock_abi() > 0
FAKE = ('{"kind": "result", "exit": 0, "passed": 5, "failed": 0, "errors": 0, "skipped": 0, "collected": 5, '
        '"memory": false, "failures": []}')


def _run(body: str, **kw) -> SandboxResult:
    return run_tests({"test_gen.py": body}, timeout_s=30, memory_mb=1024, **kw)


# --- 1. the complete escape of the audit -------------------------------------------------------

HOSTILE3 = '''import collections, operator, random
def _off():
    m = operator.attrgetter('modules')(collections._sys)
    imp = operator.attrgetter('__imp'+'ort__')(m['builtins'])
    gc = imp('gc')
    for f in gc.get_objects():
        pass
def test_x():
    _off()
    random._os.system('id > pwned')
'''


@pytest.mark.parametrize("code, what", [
    (HOSTILE3, "access to attribute 'attrgetter'"),
    ("import random\ndef test_x():\n    random._os.system('id')\n", "private attribute '_os'"),
    ("import collections\ndef test_x():\n    collections._sys.modules\n", "private attribute '_sys'"),
    ("from operator import attrgetter\n", "import of 'attrgetter' from 'operator'"),
    ("import operator\nf = operator.methodcaller('x')\n", "attribute 'methodcaller'"),
    ("import string\ndef test_x():\n    string.Formatter().get_field('0.x', [1], {})\n", "attribute 'Formatter'"),
    ("import typing\ndef f(x: 'random._os') -> None:\n    pass\n", "private attribute '_os'"),
    ("import typing\ndef test_x():\n    typing.get_type_hints(test_x)\n", "attribute 'get_type_hints'"),
    ("import pytest\n@pytest.mark.skipif(\"__import__('os').system('id')\")\ndef test_x():\n    pass\n",
     "condition of pytest.mark.skipif that may be a string"),
    ("def test_x():\n    print('{0.__init__.__globals__}'.format(test_x))\n", "format field reaching a private"),
    ("import pytest\ndef test_x():\n    pytest.importorskip('os')\n", "attribute 'importorskip'"),
])
def test_screen_refuses_the_audit_escape_routes(code, what):
    r = _one_screened(code)
    assert r.reason.startswith("forbidden: ") and what in r.traceback, r.traceback
    assert r.returncode is None  # nothing ran


def _one_screened(code: str) -> SandboxResult:
    return run_tests({"test_gen.py": code}, timeout_s=30, memory_mb=1024)


def test_hostile3_with_the_screen_off_is_stopped_by_the_guard():
    r = _run(HOSTILE3.replace("collections._sys", "__import__('sys')"), screen=False)
    assert r.reason == "forbidden: gc.get_objects (-1)", r.feedback()
    assert "_off" in r.traceback and "test_gen.py" in r.traceback


@pytest.mark.parametrize("code, reason", [
    ("import gc\ndef test_x():\n    gc.get_referrers(test_x)\n", "forbidden: gc.get_referrers"),
    ("import sys\ndef test_x():\n    sys._getframe(0).f_back.f_locals\n", "forbidden: sys._getframe by generated code"),
    ("import sys\ndef test_x():\n    sys.settrace(lambda *a: None)\n", "forbidden: sys.settrace"),
    ("import sys\ndef test_x():\n    sys.setprofile(lambda *a: None)\n", "forbidden: sys.setprofile"),
    ("def test_x():\n    try:\n        1 / 0\n    except ZeroDivisionError as e:\n        e.__traceback__.tb_frame\n",
     "forbidden: object.__getattr__ 'tb_frame' by generated code"),
    ("def f():\n    yield 1\ndef test_x():\n    f().gi_frame\n", "forbidden: object.__getattr__ 'gi_frame'"),
    ("def test_x():\n    test_x.__code__\n", "forbidden: object.__getattr__ '__code__'"),
    ("def test_x():\n    exec('1 + 1')\n", "forbidden: compile of dynamic code by generated code"),
    ("import pickle, os\nclass E:\n    def __reduce__(self):\n        return (os.system, ('id',))\n"
     "def test_x():\n    pickle.loads(pickle.dumps(E()))\n", "forbidden: unpickling ('posix', 'system')"),
])
def test_guard_refuses_introspection_that_reaches_its_state(code, reason):
    r = _run(code, screen=False)
    assert r.reason.startswith(reason), r.feedback()
    assert r.returncode == 86


def test_patching_modules_does_not_switch_the_guard_off():
    """The guard binds what it calls when it is installed: patched os.path, posixpath and the
    bootstrap's own globals change nothing."""
    r = _run("import os, posixpath\ndef test_x():\n    posixpath.realpath = lambda p, **k: os.getcwd()\n"
             "    os.path.realpath = posixpath.realpath\n    print(open('/etc/passwd').read())\n", screen=False)
    assert r.reason == "forbidden: open('/etc/passwd') for reading outside the sandbox and the Python installation"
    r = _run("import sys, socket\ndef test_x():\n    m = sys.modules['__main__']\n"
             "    m._ALWAYS, m._PREFIXES, m._within = frozenset(), ('zzz',), (lambda *a: True)\n"
             "    socket.socket()\n", screen=False)
    assert r.reason.startswith("forbidden: socket.__new__"), r.feedback()


def test_guard_runs_no_code_of_the_objects_it_checks():
    """A path object with __fspath__/__eq__, or a str subclass with its own methods, must not
    get the guard to call into it (that would put the guard's frame in reach)."""
    r = _run("import sys\nclass P:\n    def __fspath__(self):\n        print('CALLED'); return '/tmp/x'\n"
             "    def __eq__(self, o):\n        print('CALLED'); return True\n    __hash__ = object.__hash__\n"
             "def test_x():\n    sys.audit('open', P(), 'r', 0)\n", screen=False)
    assert r.reason == "forbidden: open() of a path given as P" and "CALLED" not in r.stdout + r.stderr
    r = _run("import os\nclass S(str):\n    def startswith(self, *a):\n        print('CALLED'); return True\n"
             "    def __radd__(self, o):\n        print('CALLED'); return 'x'\n"
             "def test_x():\n    os.listdir(S('/root'))\n", screen=False)
    assert r.reason == "forbidden: os.listdir('/root') outside the sandbox and the Python installation"
    assert "CALLED" not in r.stdout + r.stderr


def test_ordinary_library_use_still_works_under_the_guard():
    """namedtuple / TypeVar / functional Enum look at frames, threads, pytest.raises, tmp_path."""
    r = _run("import collections, typing, enum, dataclasses, threading, pytest\n"
             "P = collections.namedtuple('P', 'a b')\nT = typing.TypeVar('T')\nE = enum.Enum('E', 'x y')\n"
             "@dataclasses.dataclass(frozen=True)\nclass D:\n    a: int = 1\n"
             "def test_a(tmp_path):\n    out = []\n    t = threading.Thread(target=lambda: out.append(1))\n"
             "    t.start(); t.join()\n    with pytest.raises(ValueError, match='boom'):\n"
             "        raise ValueError('boom')\n    (tmp_path / 'x.txt').write_text('hi')\n"
             "    assert P(1, 2).a == 1 and D().a == 1 and E.x and out == [1]\n", screen=False)
    assert r.passed, r.feedback()


# --- 2. forged results ----------------------------------------------------------------------------

FORGE_FD = f'''import os, sys
def test_a():
    assert "report_fd" not in " ".join(sys.argv)  # the pipe's number is not on the command line
    for fd in range(3, 64):
        try:
            os.write(fd, {FAKE!r}.encode() + b"\\n")
        except OSError:
            pass
    os._exit(0)
def test_b():
    assert False
'''


def test_forged_result_line_on_the_report_pipe_is_refused():
    r = _run(FORGE_FD, screen=False)
    assert not r.passed and r.returncode == 0
    assert r.reason == "forbidden: tampering with the sandbox's report channel (forged test result)"
    assert "unsigned line" in r.traceback


@pytest.mark.parametrize("call", [
    f"sys.audit('tinyuop.result', {FAKE!r}, 0)",
    f"sys.modules['__main__']._report({FAKE!r}, 0, sys.audit)",
])
def test_result_not_sent_by_the_harness_is_refused(call):
    r = _run(f"import sys\ndef test_a():\n    {call}\ndef test_b():\n    assert False\n", screen=False)
    assert r.reason == "forbidden: a sandbox result sent from outside the harness (forged result)", r.feedback()


def test_the_audit_forge_is_refused_by_the_screen():
    code = ("import random, collections\ndef test_x():\n    cfg = collections._sys.argv[1]\n"
            "    random._os.write(5, b'x')\n    random._os._exit(0)\ndef test_y():\n    assert False\n")
    r = _one_screened(code)
    assert r.reason == "forbidden: access to private attribute '_sys' (names starting with '_' are refused: use " \
                       "the public API)"


@pytest.mark.parametrize("code, note", [
    ("import pytest\ndef test_a():\n    pytest.exit('bye', returncode=0)\ndef test_b():\n    assert False\n",
     "only 0 of 2 collected tests ran"),
    ("import pytest\ndef test_a():\n    pass\ndef test_b():\n    pytest.skip('no')\n    assert False\n",
     "1 test(s) skipped"),
])
def test_stopping_or_skipping_early_is_not_a_pass(code, note):
    r = _one_screened(code)
    assert r.reason == "tests failed" and note in r.traceback, r.feedback()


@pytest.mark.parametrize("code, what", [
    ("import numpy as np\nnp.testing.assert_allclose = lambda *a, **k: None\n", "changing attribute 'assert_allclose'"),
    ("def pytest_runtest_makereport(item, call):\n    pass\n", "pytest hook 'pytest_runtest_makereport'"),
    ("pytest_plugins = ['blk']\n", "pytest_plugins"),
    ("def test_x(request):\n    request.session.items\n", "fixture or parameter 'request'"),
])
def test_screen_refuses_ways_to_make_failing_tests_pass(code, what):
    r = _one_screened(code)
    assert r.reason.startswith("forbidden: ") and what in r.traceback, r.traceback


def test_conftest_is_refused():
    with pytest.raises(ValueError, match="conftest.py"):
        run_tests({"conftest.py": "", "test_a.py": "def test_a():\n    pass\n"})


def test_parent_cross_checks_the_signed_result():
    def judge(msgs, rc):
        res = SandboxResult(False, "", rc)
        _judge(res, msgs, [], False, 10, lambda s: s)
        return res
    ok = dict(json.loads(FAKE), collected=5)
    assert judge([ok], 0).passed
    assert judge([ok], 1).reason.startswith("forbidden: tampering")          # exit status disagrees
    assert judge([ok, ok], 0).reason.startswith("forbidden: tampering")      # two results
    late = judge([ok, {"kind": "layers", "layers": {}}], 0)                  # something after the result
    assert late.reason.startswith("forbidden: tampering") and "messages after the result" in late.traceback


# --- 2b. the third review: frames through trusted helpers, plugins, patched libraries ----------------

REVIEW_BLOCK = ("import functools\n_store = {}\nclass _Grab:\n    def __setattr__(self, k, v):\n        _store[k] = v\n"
                "def get(obj, name):\n    functools.update_wrapper(_Grab(), obj, assigned=(name,), updated=())\n"
                "    return _store[name]\n")
REVIEW_TEST = ('import pytest\nfrom my_block import get\ndef frames():\n    try:\n        1 / 0\n'
               '    except ZeroDivisionError as e:\n        err = e\n'
               '    f = get(get(err, "__trace" + "back__"), "tb_frame")\n    while f is not None:\n'
               '        yield f\n        f = get(f, "f_back")\nconfig = None\nfor f in frames():\n'
               '    loc = get(f, "f_locals")\n    if "config" in loc and config is None:\n'
               '        config = loc["config"]\n'
               'def fix(report):\n    report.outcome = "passed"\n'
               'P = type("P", (), {"pytest_runtest_logreport": staticmethod(pytest.hookimpl(tryfirst=True)(fix))})\n'
               'get(config, "pluginmanager").register(P())\ndef test_block_is_right():\n    assert 1 + 1 == 3\n')


@pytest.mark.parametrize("screen", [True, False])
def test_reviewers_forged_pass_is_not_reported_as_passed(screen):
    """The screen refuses it before anything runs; without the screen the guard stops the frame
    read that functools.update_wrapper makes on the generated code's behalf."""
    r = run_tests({"my_block.py": REVIEW_BLOCK, "test_my_block.py": REVIEW_TEST}, timeout_s=30, memory_mb=1024,
                  screen=screen)
    assert not r.passed
    if screen:
        assert r.returncode is None and r.reason == "forbidden: defining '__setattr__' (library code would call " \
            "it with names or values of its own; allowed special methods are operators, containers, __init__, " \
            "__repr__, __call__, __enter__/__exit__, __array__)", r.reason
        assert "access to attribute 'update_wrapper'" in r.traceback
    else:
        assert r.reason == "forbidden: object.__getattr__ 'tb_frame' by generated code (frame, code and function " \
                           "internals)", r.feedback()
        assert "update_wrapper" in r.traceback and "my_block.py" in r.traceback


@pytest.mark.parametrize("code, reason", [
    ("import inspect\ndef test_x():\n    inspect.currentframe().f_back\n", "forbidden: sys._getframe by generated"),
    ("import inspect\ndef test_x():\n    inspect.stack()\n", "forbidden: sys._getframe by generated code"),
    ("import traceback\ndef test_x():\n    try:\n        1 / 0\n    except ZeroDivisionError as e:\n"
     "        list(traceback.walk_tb(e.__traceback__))\n", "forbidden: object.__getattr__ 'tb_frame'"),
    ("def test_x():\n    open('helper.py', 'w').write('x = 1')\n", "forbidden: open('helper.py') for writing a Python"),
    ("import os\ndef test_x():\n    open('a.txt', 'w').close()\n    os.rename('a.txt', 'pygments.py')\n",
     "forbidden: os.rename to 'pygments.py', a Python module"),
])
def test_guard_looks_past_helpers_that_hand_out_frames_and_refuses_module_files(code, reason):
    r = _run(code, screen=False)
    assert r.reason.startswith(reason), r.feedback()


def test_plugin_registered_during_the_session_fails_the_run():
    """pytest.mark keeps the running config; a plugin registered through it flips outcomes. The
    screen refuses `_config`; without it the collector sees the new plugin."""
    code = ("import pytest\ndef fix(report):\n    report.outcome = 'passed'\nclass P:\n"
            "    pytest_runtest_logreport = staticmethod(pytest.hookimpl(tryfirst=True)(fix))\n"
            "pytest.mark._config.pluginmanager.register(P())\ndef test_a():\n    assert False\n")
    assert "private attribute '_config'" in _one_screened(code).traceback
    r = _run(code, screen=False)
    assert not r.passed and r.reason.startswith("forbidden: changing pytest or library code during the run (pytest "
                                                "plugin"), r.feedback()


def test_library_patched_through_a_parameter_fails_the_run():
    """The screen follows aliases but not values passed to functions; the harness compares the
    allowed modules' public attributes before and after the tests."""
    r = run_tests({"my_block.py": "import numpy as np\ndef patch(t):\n    t.assert_allclose = lambda *a, **k: None\n"
                                  "patch(np.testing)\n",
                   "test_my_block.py": "import numpy as np\nimport my_block\ndef test_a():\n"
                                       "    np.testing.assert_allclose(1.0, 2.0)\n"}, timeout_s=30, memory_mb=1024)
    assert r.counts["passed"] == 1 and not r.passed
    assert r.reason == "forbidden: changing pytest or library code during the run (numpy.testing.assert_allclose " \
                       "was changed)", r.feedback()


# --- 3. reads, links, FIFOs outside the folder ----------------------------------------------------

@pytest.mark.parametrize("code, reason", [
    ("import os\ndef test_x():\n    os.listdir('/root')\n", "forbidden: os.listdir('/root') outside the sandbox"),
    ("import os\ndef test_x():\n    list(os.scandir('/etc'))\n", "forbidden: os.scandir('/etc') outside the sandbox"),
    ("import os\ndef test_x():\n    list(os.walk('/etc'))\n", "forbidden: os.scandir('/etc') outside the sandbox"),
    ("import os\ndef test_x():\n    os.link('/etc/hostname', 'h')\n", "forbidden: os.link('/etc/hostname') outside"),
    ("import os\ndef test_x():\n    os.symlink('/etc/hostname', 'h')\n", "forbidden: os.symlink('/etc/hostname') outside"),
    ("import os\ndef test_x():\n    os.rename('a', '/tmp/a')\n", "forbidden: os.rename('/tmp/a') outside"),
    ("import os\ndef test_x():\n    os.chmod('/tmp', 0o777)\n", "forbidden: os.chmod('/tmp') outside"),
    ("def test_x():\n    open('/proc/self/mem', 'rb')\n", "forbidden: open('/proc/self/mem') for reading"),
    ("def test_x():\n    open('/proc/self/environ', 'rb')\n", "forbidden: open('/proc/self/environ') for reading"),
])
def test_guard_fences_listing_and_linking(code, reason):
    r = _run(code, screen=False)
    assert r.reason.startswith(reason), r.feedback()


@pytest.mark.skipif(not (LANDLOCK or SECCOMP), reason="no kernel layer on this platform")
def test_mkfifo_and_mknod_have_no_audit_event_but_the_kernel_refuses_them(tmp_path):
    outside = tmp_path / "fifo"
    r = _run(f"import os, pytest\ndef test_x():\n    for p in ({str(outside)!r}, 'in_box'):\n"
             "        with pytest.raises(PermissionError):\n            os.mkfifo(p)\n"
             "    with pytest.raises(PermissionError):\n        os.mknod('node')\n", screen=False)
    assert r.passed, r.feedback()
    assert not outside.exists()
    assert "mkfifo" in screen_source("import numpy as np\nnp.mkfifo\n")[0]


@pytest.mark.skipif(not SECCOMP or sys.version_info[:2] != (3, 11), reason="seccomp and 3.11's fork_exec signature")
def test_process_without_an_audit_event_is_refused_by_seccomp():
    """_posixsubprocess.fork_exec raises no audit event; the seccomp filter refuses the fork."""
    r = _run("import _posixsubprocess, os, pytest\ndef test_x():\n    er, ew = os.pipe()\n"
             "    args = [[b'/bin/sh', b'-c', b'id > marker'], [b'/bin/sh'], True, (), None, None, -1, -1, -1, -1,"
             " -1, -1, er, ew, False, False, -1, None, None, None, -1, None, False]\n"
             "    with pytest.raises(PermissionError):\n        _posixsubprocess.fork_exec(*args)\n"
             "    assert not os.path.exists('marker')\n", screen=False)
    assert r.passed, r.feedback()


# --- kernel layers: reported, and holding without the Python guard ----------------------------------

def test_child_reports_its_kernel_layers():
    r = _run("def test_a():\n    pass\n")
    assert r.passed and set(r.layers) == {"network", "filesystem", "syscalls"}
    assert all(v.startswith(("on: ", "off: ")) for v in r.layers.values()), r.layers
    if LANDLOCK:
        assert r.layers["filesystem"].startswith("on: Landlock ABI")
    if SECCOMP:
        assert r.layers["syscalls"].startswith("on: seccomp")
    if not LINUX:
        assert all(v.startswith("off: ") for v in r.layers.values())
    off = _run("def test_a():\n    pass\n", os_layers=False)
    assert off.passed and all(v == "off: switched off by the caller" for v in off.layers.values())


PROBE = r'''
import importlib.util, json, os, socket, subprocess, sys
spec = importlib.util.spec_from_file_location("osl", sys.argv[1])
osl = importlib.util.module_from_spec(spec); spec.loader.exec_module(osl)
box, secret, port = sys.argv[2], sys.argv[3], int(sys.argv[4])
layers = [osl.isolate_network(), osl.restrict_filesystem(box, [sys.prefix, sys.base_prefix]), osl.deny_syscalls()]
def attempt(f):
    try:
        f(); return "allowed"
    except Exception as e:
        return type(e).__name__
out = {"layers": layers,
       "connect": attempt(lambda: socket.create_connection(("127.0.0.1", port), timeout=2)),
       "read_secret": attempt(lambda: open(secret).read()),
       "write_outside": attempt(lambda: open(secret + ".new", "w").write("x")),
       "write_box": attempt(lambda: open(os.path.join(box, "ok.txt"), "w").write("x")),
       "spawn": attempt(lambda: subprocess.run(["/bin/true"], check=True)),
       "mkfifo": attempt(lambda: os.mkfifo(os.path.join(box, "f")))}
print(json.dumps(out))
'''


@pytest.mark.skipif(not LINUX, reason="kernel layers are Linux only")
def test_kernel_layers_hold_without_the_python_guard(tmp_path):
    """What remains if the audit hook fell: a plain Python process with only the oslimits layers."""
    box = tmp_path / "box"
    box.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    try:
        p = subprocess.run([sys.executable, "-I", "-c", PROBE, str(Path(oslimits.__file__)), str(box), str(secret),
                            str(srv.getsockname()[1])], capture_output=True, text=True, timeout=60)
    finally:
        srv.close()
    out = json.loads(p.stdout)
    net, fs, sc = out["layers"]
    if net.startswith("on") or sc.startswith("on"):
        assert out["connect"] != "allowed"
    if fs.startswith("on"):
        assert out["read_secret"] == out["write_outside"] == "PermissionError"
        assert out["write_box"] == "allowed"
    if sc.startswith("on"):
        assert out["spawn"] == "PermissionError" and out["mkfifo"] == "PermissionError"
    assert not Path(str(secret) + ".new").exists()
    assert LANDLOCK == fs.startswith("on"), fs
