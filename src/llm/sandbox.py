"""Run generated code (a block module and its pytest tests) in a separate, fenced process.

    result = run_tests({"my_block.py": code, "test_my_block.py": tests}, timeout_s=60, memory_mb=2048)
    result.passed, result.reason, result.traceback

Layers, outermost first (docs/security.md has the threat model and the limits):
- a static screen of every file (`llm.screen`) before anything runs;
- a child process `python -I` (no user site, no PYTHON* variables, no script folder on the
  path) in its own session, started in a fresh temporary folder that is its working
  directory, HOME and TMPDIR, with a minimal environment (no API keys, no proxies);
- rlimits in the child (address space, file size, CPU, no core dumps) and a wall-clock
  limit in the parent that kills the whole process group;
- an audit hook in the child (`llm.sandbox_boot`) that refuses sockets, processes, ctypes
  and file access outside the sandbox folder (writes) and the Python installation (reads);
- tinygrad runs on its pure-Python device (DEV=PYTHON) there, so the tests need neither a
  compiler process nor foreign code.
It is not a VM: on shared servers run the whole extension in a container as well.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .redact import redact
from .screen import screen_files

VIOLATION_EXIT = 86  # mirrors llm.sandbox_boot.VIOLATION_EXIT
_BOOT = Path(__file__).with_name("sandbox_boot.py")
_TAIL = 20000


@dataclass
class SandboxResult:
    """What one sandboxed run did. `reason` is "passed", "timeout", "memory",
    "forbidden: <what>", "tests failed" or "crashed: <signal>"."""
    passed: bool
    reason: str
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    traceback: str = ""
    duration_s: float = 0.0
    counts: dict = field(default_factory=dict)   # passed / failed / errors

    def feedback(self, limit: int = 6000) -> str:
        """The part worth showing to a person or sending back to the model: reason + traceback."""
        text = self.traceback or (self.stderr + "\n" + self.stdout).strip()
        if len(text) > limit:
            text = "...\n" + text[-limit:]
        return f"{self.reason}\n{text}".strip()


class _Tail(threading.Thread):
    """Drains a pipe, keeping only the last `limit` bytes (so endless output cannot fill memory)."""

    def __init__(self, fd: int, limit: int = _TAIL):
        super().__init__(daemon=True)
        self.fd, self.limit, self.data, self.total = fd, limit, bytearray(), 0

    def run(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.total += len(chunk)
            self.data += chunk
            if len(self.data) > 4 * self.limit:
                del self.data[:-self.limit]
        os.close(self.fd)

    def text(self) -> str:
        s = bytes(self.data[-self.limit:]).decode("utf-8", "replace")
        return ("[... output cut ...]\n" + s) if self.total > self.limit else s


class _Lines(_Tail):
    """The private report pipe: JSON lines written by the bootstrap and its audit hook."""

    def __init__(self, fd: int):
        super().__init__(fd, limit=1 << 22)

    def messages(self) -> list[dict]:
        out = []
        for line in bytes(self.data).decode("utf-8", "replace").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


def child_env(box: str) -> dict[str, str]:
    """The whole environment of the child: nothing inherited, so no keys or tokens leak in."""
    return {"PATH": "/usr/bin:/bin", "HOME": box, "TMPDIR": box, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "DEV": "PYTHON", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "CACHELEVEL": "0", "TINYUOP_BLOCK_LIBRARY": os.path.join(box, ".library")}


def _read_roots() -> list[str]:
    import sysconfig
    import uop_engine
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sysconfig.get_paths()["stdlib"],
             sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
             str(Path(uop_engine.__file__).resolve().parent.parent), "/dev/null", "/dev/urandom",
             "/proc/self", "/sys/devices/system/cpu", "/etc/localtime", "/usr/share/zoneinfo"}
    return sorted(roots)


def run_tests(files: dict[str, str], tests: list[str] | None = None, timeout_s: float = 60.0,
              memory_mb: int = 2048, file_size_mb: int = 64, secrets: tuple[str, ...] = (),
              screen: bool = True) -> SandboxResult:
    """Screen `files` (name -> source), write them to a fresh folder and run pytest on `tests`
    (default: every test_*.py) in the fenced child. `secrets` are cut out of all text returned.
    `screen=False` skips the static screen (only to test the runtime guard on its own)."""
    if timeout_s <= 0 or memory_mb < 256:
        raise ValueError("timeout_s must be > 0 and memory_mb >= 256 (the interpreter, numpy and tinygrad "
                         "need about 200 MB of address space)")
    for name in files:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\.(py|txt|json)", name):
            raise ValueError(f"file name {name!r} is not allowed: use plain names like my_block.py")
    tests = tests if tests is not None else sorted(n for n in files if n.startswith("test_") and n.endswith(".py"))
    if not tests:
        return SandboxResult(False, "tests failed", None, traceback="no test file (name it test_<block>.py)")
    problems = screen_files(files) if screen else []
    if problems:
        what = problems[0].split(": ", 1)[-1]
        return SandboxResult(False, f"forbidden: {what}", None, traceback="static screen refused the code:\n"
                             + "\n".join(problems))
    box = tempfile.mkdtemp(prefix="tinyuop_sandbox_")
    try:
        return _run(box, files, tests, timeout_s, memory_mb, file_size_mb, secrets)
    finally:
        shutil.rmtree(box, ignore_errors=True)


def _run(box: str, files: dict[str, str], tests: list[str], timeout_s: float, memory_mb: int,
         file_size_mb: int, secrets: tuple[str, ...]) -> SandboxResult:
    import uop_engine
    for name, src in files.items():
        Path(box, name).write_text(src)
    ini = Path(box, ".pytest.ini")
    ini.write_text("[pytest]\n")
    report_r, report_w = os.pipe()
    cfg = {"dir": box, "src": str(Path(uop_engine.__file__).resolve().parent.parent), "tests": tests,
           "ini": str(ini), "report_fd": report_w, "timeout_s": timeout_s, "memory_mb": memory_mb,
           "file_size_mb": file_size_mb, "read_roots": _read_roots()}
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-B", str(_BOOT), json.dumps(cfg)], cwd=box,
                                env=child_env(box), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, pass_fds=(report_w,), start_new_session=True)
    finally:
        os.close(report_w)
    out, err, rep = _Tail(os.dup(proc.stdout.fileno())), _Tail(os.dup(proc.stderr.fileno())), _Lines(report_r)
    proc.stdout.close()
    proc.stderr.close()
    for t in (out, err, rep):
        t.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        try:  # the whole group: the child and anything it managed to start
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
    for t in (out, err, rep):
        t.join(timeout=5)
    dt = time.monotonic() - t0
    clean = lambda s: redact(s, secrets)  # noqa: E731
    res = SandboxResult(False, "", proc.returncode, clean(out.text()), clean(err.text()), duration_s=round(dt, 3))
    msgs = rep.messages()
    violation = next((m for m in msgs if m.get("kind") == "violation"), None)
    final = next((m for m in msgs if m.get("kind") == "result"), None)
    if final:
        res.counts = {k: final.get(k, 0) for k in ("passed", "failed", "errors")}
        res.traceback = clean("\n\n".join(f"[{f['where']}] {f['test']}\n{f['text']}" for f in final["failures"]))
    if timed_out:
        res.reason = "timeout"
        res.traceback = (res.traceback or "") + f"\nno result after {timeout_s:g} s: the process group was killed" \
            "\n" + res.stdout[-2000:]
    elif violation or proc.returncode == VIOLATION_EXIT:
        what = violation["what"] if violation else "an action refused by the sandbox"
        res.reason = f"forbidden: {clean(what)}"
        res.traceback = clean(violation["stack"]) if violation else res.stderr[-4000:]
    elif (final and final.get("memory")) or "MemoryError" in res.stderr[-4000:]:
        res.reason = "memory"
        res.traceback = res.traceback or res.stderr[-4000:]
    elif final is None:
        sig = -proc.returncode if proc.returncode and proc.returncode < 0 else None
        res.reason = f"crashed: {signal.Signals(sig).name}" if sig else f"crashed: exit code {proc.returncode} " \
                                                                         "before the tests reported"
        res.traceback = res.stderr[-4000:] or res.stdout[-4000:]
    elif proc.returncode == 0 and final.get("passed", 0) > 0 and not final.get("failed") and not final.get("errors"):
        res.passed, res.reason = True, "passed"
    else:
        res.reason = "tests failed"
        if not res.traceback:
            res.traceback = (res.stdout[-4000:] or res.stderr[-4000:]) + \
                ("\n(no test ran: define test_* functions)" if not final.get("passed") else "")
    return res
