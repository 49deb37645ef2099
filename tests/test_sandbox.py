"""The sandbox for generated code: good code passes; escapes are stopped with the reason named.

Each layer is tested on its own: the static screen (default), and the runtime guard in the
child with the screen switched off (`screen=False`), so a hole in one is not hidden by the other.
"""
import os
import time

import pytest

from llm.redact import redact
from llm.sandbox import child_env, run_tests
from llm.sandbox_disk import DiskWatch
from llm.screen import screen_source

GOOD_BLOCK = '''
from uop_engine.plugins import define_block, Param, TT, FLOAT

def infer(ts, p):
    return [TT(ts[0].shape, ts[0].dtype)]

def lower(ctx, xs, p, w):
    return xs[0] * (xs[0] * p["beta"]).sigmoid()

BLOCK = define_block("swish_sb", "x * sigmoid(beta * x).", inputs=("x",),
                     params=(Param("beta", FLOAT, 1.0, "slope"),), infer=infer, lower=lower)
'''

GOOD_TESTS = '''
import numpy as np
import swish_sb
from uop_engine import GraphBuilder, compile_graph

def test_matches_numpy():
    g = GraphBuilder("t")
    g.output(g.add(swish_sb.BLOCK.name, g.input((4,)), beta=2.0))
    a = np.linspace(-2, 2, 8, dtype=np.float32).reshape(2, 4)
    out = compile_graph(g.build())(a).numpy()
    np.testing.assert_allclose(out, a / (1 + np.exp(-2 * a)), rtol=1e-5, atol=1e-6)
'''


def _one(body: str, **kw):
    return run_tests({"test_gen.py": body}, timeout_s=kw.pop("timeout_s", 20), memory_mb=kw.pop("memory_mb", 1024),
                     **kw)


def test_good_block_and_tests_pass():
    r = run_tests({"swish_sb.py": GOOD_BLOCK, "test_swish_sb.py": GOOD_TESTS}, timeout_s=30, memory_mb=1024)
    assert r.passed, r.feedback()
    assert r.reason == "passed" and r.returncode == 0 and r.counts == {"passed": 1, "failed": 0, "errors": 0, "skipped": 0, "collected": 1}


def test_failing_test_reports_the_assertion_traceback():
    r = _one("def test_f():\n    x = 1\n    assert x == 2, 'x should be two'\n")
    assert not r.passed and r.reason == "tests failed"
    assert "x should be two" in r.traceback and "test_gen.py:3" in r.traceback


def test_import_error_in_module_is_a_failure_with_its_traceback():
    r = run_tests({"blk.py": "import numpy as np\nX = np.nosuchthing\n", "test_blk.py": "import blk\n"
                   "def test_a():\n    assert blk.X\n"}, timeout_s=20, memory_mb=1024)
    assert r.reason == "tests failed" and "nosuchthing" in r.traceback


def test_no_tests_is_not_a_pass():
    assert _one("X = 1\n").reason == "tests failed"
    assert run_tests({"blk.py": "X = 1\n"}).reason == "tests failed"


@pytest.mark.parametrize("code, what", [
    ("def test_w():\n    open('/tmp/evil.txt', 'w').write('x')\n", "builtin 'open'"),
    ("import socket\ndef test_s():\n    socket.socket()\n", "import of 'socket'"),
    ("import subprocess\ndef test_p():\n    subprocess.run(['true'])\n", "import of 'subprocess'"),
    ("def test_d():\n    ().__class__.__bases__[0].__subclasses__()\n", "dunder attribute '__class__'"),
    ("import uop_engine.blocklib as b\n", "import of 'uop_engine.blocklib'"),
    ("import numpy as np\ndef test_o():\n    np.os.system('true')\n", "attribute 'os'"),
])
def test_static_screen_refuses_before_running(code, what):
    r = _one(code)
    assert r.reason.startswith("forbidden: ") and what in r.reason and r.returncode is None
    assert "static screen" in r.traceback


def test_runtime_guard_stops_writing_outside_the_folder(tmp_path):
    target = tmp_path / "evil.npy"
    r = _one(f"import numpy as np\ndef test_w():\n    np.save({str(target)!r}, np.zeros(3))\n", screen=False)
    assert r.reason.startswith("forbidden: open(") and "for writing outside the sandbox" in r.reason
    assert not target.exists()
    assert "test_gen.py" in r.traceback  # the stack shows the offending line


def test_runtime_guard_allows_writing_inside_the_folder():
    r = _one("import numpy as np\ndef test_w(tmp_path):\n    np.save('here.npy', np.zeros(3))\n"
             "    np.save(tmp_path / 'x.npy', np.ones(2))\n    assert np.load('here.npy').shape == (3,)\n", screen=False)
    assert r.passed, r.feedback()


def test_runtime_guard_stops_reading_outside(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("hunter2")
    r = _one(f"def test_r():\n    print(open({str(secret)!r}).read())\n", screen=False)
    assert r.reason.startswith("forbidden: open(") and "for reading" in r.reason
    assert "hunter2" not in r.stdout + r.stderr + r.traceback


@pytest.mark.parametrize("code, event", [
    ("import socket\ndef test_s():\n    socket.create_connection(('127.0.0.1', 9))\n", "socket."),
    ("import subprocess\ndef test_p():\n    subprocess.run(['true'])\n", "subprocess.Popen"),
    ("import os\ndef test_p():\n    os.system('true')\n", "os.system"),
    ("import os\ndef test_p():\n    os.fork()\n", "os.fork"),
    ("import ctypes\ndef test_c():\n    ctypes.CDLL('libc.so.6')\n", "ctypes.dlopen"),
    ("import shutil\ndef test_r():\n    shutil.rmtree('/tmp/nothing_here')\n", "shutil.rmtree"),
])
def test_runtime_guard_stops_network_processes_and_foreign_code(code, event):
    r = _one(code, screen=False)
    assert r.reason.startswith("forbidden: ") and event in r.reason, r.feedback()


def test_catching_the_refusal_does_not_help():
    r = _one("import socket\ndef test_s():\n    try:\n        socket.socket()\n    except BaseException:\n"
             "        pass\n", screen=False)
    assert r.reason.startswith("forbidden: socket.") and not r.passed


def test_endless_loop_is_killed_at_the_time_limit():
    t0 = time.monotonic()
    r = _one("def test_l():\n    while True:\n        pass\n", timeout_s=3)
    assert r.reason == "timeout" and not r.passed
    assert time.monotonic() - t0 < 10


def test_allocating_10_gb_hits_the_memory_limit():
    r = _one("def test_m():\n    b = bytearray(10 * 1024 ** 3)\n    assert len(b)\n")
    assert r.reason == "memory" and "MemoryError" in r.traceback
    r = _one("import numpy as np\ndef test_m():\n    np.ones(10 * 1024 ** 3, dtype=np.uint8)\n")
    assert r.reason == "memory"


def test_many_files_under_the_per_file_limit_hit_the_total_disk_limit():
    """The review's case: six 60 MB files pass RLIMIT_FSIZE (64 MB each) but not the folder cap."""
    r = _one("import numpy as np\ndef test_a():\n    z = np.zeros(60 * 1024 * 1024 // 8)\n    for i in range(6):\n"
             "        np.save('f%d.npy' % i, z)\n", timeout_s=60)
    assert not r.passed and r.reason == "disk", r.feedback()
    assert "past the disk limit of 256 MB" in r.traceback
    assert r.duration_s < 30


@pytest.mark.parametrize("code, what", [
    # files written and kept open after deleting them take space no folder listing shows
    ("import os, time\ndef test_a():\n    fs = []\n    for i in range(4):\n        f = open('f%d' % i, 'wb')\n"
     "        os.unlink('f%d' % i)\n        f.write(b'x' * (30 << 20))\n        f.flush()\n        fs.append(f)\n"
     "    time.sleep(20)\n", " MB, "),
    # many small files, and very deep folders
    ("def test_a():\n    for i in range(30000):\n        open('f%d' % i, 'wb').close()\n",
     "more than 20000 files and folders"),
    ("import os, time\ndef test_a():\n    for i in range(80):\n        os.mkdir('d')\n        os.chdir('d')\n"
     "    time.sleep(20)\n", "folders nested more than 64 deep"),
])
def test_disk_limit_counts_deleted_files_entries_and_depth(code, what):
    r = _one(code, screen=False, disk_mb=64, timeout_s=40)
    assert r.reason == "disk" and what in r.traceback, r.feedback()
    assert r.duration_s < 30


def test_writing_within_the_disk_limit_passes():
    r = _one("import numpy as np\ndef test_a(tmp_path):\n    np.save(tmp_path / 'a.npy', np.zeros(1 << 20))\n"
             "    assert np.load(tmp_path / 'a.npy').shape == (1 << 20,)\n", disk_mb=32)
    assert r.passed, r.feedback()


def test_disk_watch_counts_links_once_and_never_follows_them(tmp_path):
    box, outside = tmp_path / "box", tmp_path / "big.bin"
    box.mkdir()
    outside.write_bytes(b"x" * (3 << 20))
    (box / "a.bin").write_bytes(b"y" * (2 << 20))
    os.link(box / "a.bin", box / "b.bin")        # the same 2 MB twice
    os.symlink(outside, box / "big_link")        # 3 MB elsewhere: not the sandbox's
    os.symlink(tmp_path, box / "up")             # a loop if followed
    w = DiskWatch(str(box), limit_mb=2.5)
    assert w.over() is None and 2 << 20 <= w.used < 3 << 20 and w.entries == 4
    assert "past the disk limit of 1 MB" in DiskWatch(str(box), limit_mb=1).over()
    assert DiskWatch(str(tmp_path / "gone"), limit_mb=1).over() is None


def test_child_environment_has_no_keys(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789abcdef0123")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert "ANTHROPIC_API_KEY" not in child_env("/x")
    r = _one("import os\ndef test_env():\n    assert not [k for k in os.environ if 'KEY' in k or 'PROXY' in k]\n"
             "    assert os.environ['HOME'] == os.getcwd()\n", screen=False)
    assert r.passed, r.feedback()


def test_output_is_redacted():
    r = _one("def test_leak():\n    print('sk-ant-api03-ABCDEFGHIJKLMNOPQRSTUV and custom-secret-value')\n"
             "    assert False\n", secrets=("custom-secret-value",))
    text = r.stdout + r.traceback
    assert "ABCDEFGHIJKLMNOP" not in text and "custom-secret-value" not in text and "[redacted]" in text


def test_redact_patterns():
    assert redact("key sk-proj-abcdefghijklmnopqrstu end") == "key [redacted] end"
    assert redact("OPENAI_API_KEY=abcdef123456") == "OPENAI_API_KEY=[redacted]"
    assert redact("Authorization: Bearer abc.def-ghi_jkl012") == "Authorization: [redacted]"
    assert redact("nothing secret here") == "nothing secret here"


def test_screen_passes_plain_block_code():
    assert screen_source(GOOD_BLOCK) == [] and screen_source(GOOD_TESTS, local_modules=["swish_sb"]) == []
    assert screen_source("def f(:\n") and "syntax error" in screen_source("def f(:\n")[0]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="memory_mb"):
        run_tests({"test_a.py": ""}, memory_mb=10)
    with pytest.raises(ValueError, match="not allowed"):
        run_tests({"../test_a.py": ""})
    with pytest.raises(ValueError, match="disk_mb"):
        run_tests({"test_a.py": ""}, disk_mb=0)
    assert os.path.basename(os.getcwd())  # the parent's cwd is untouched
