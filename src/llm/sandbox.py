"""Run generated code (a block module and its pytest tests) in a separate, fenced process.

    result = run_tests({"my_block.py": code, "test_my_block.py": tests}, timeout_s=60, memory_mb=2048)
    result.passed, result.reason, result.traceback

Layers, outermost first (docs/security.md has the threat model and the limits):
- a static screen of every file (`llm.screen`) before anything runs;
- a child process `python -I` (no user site, no PYTHON* variables, no script folder on the
  path) in its own session, started in a fresh temporary folder that is its working
  directory, HOME and TMPDIR, with a minimal environment (no API keys, no proxies);
- rlimits in the child (address space, file size, CPU, no core dumps), and in the parent a
  wall-clock limit and a limit on the folder's total size (`llm.sandbox_disk`, polled), both
  of which kill the whole process group;
- kernel fences where the platform has them (`llm.oslimits`, Linux): an empty network
  namespace, Landlock (reads only from the installation, writes only in the folder) and a
  seccomp filter (no new processes, sockets, ptrace, mounts, ...); the child reports which
  of them are on (`SandboxResult.layers`);
- an audit hook in the child (`llm.sandbox_guard`) that refuses sockets, processes, ctypes,
  file access outside the folder (writes) and the Python installation (reads), and frame,
  code and gc introspection by the generated code, with the reason;
- a report channel other processes cannot forge: the child's guard signs its messages with
  a per-run key sent on stdin, and the parent accepts one signed result, last, with a
  matching exit status. The counts in it come from the process that also runs the generated
  code: evidence for the reviewer, not a boundary (docs/security.md);
- tinygrad runs on its pure-Python device (DEV=PYTHON, PARALLEL=0) there, so the tests
  need neither a compiler process nor worker processes nor foreign code.
It is not a VM: on shared servers run the whole extension in a container as well.
"""
from __future__ import annotations

import hashlib
import hmac
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
from .sandbox_disk import POLL_S, DiskWatch
from .screen import ALLOWED_IMPORTS, screen_files

VIOLATION_EXIT, GUARD_EXIT = 86, 87  # mirror llm.sandbox_guard
_BOOT = Path(__file__).with_name("sandbox_boot.py")
_TAIL = 20000


@dataclass
class SandboxResult:
    """What one sandboxed run did. `reason` is "passed", "timeout", "memory", "disk",
    "forbidden: <what>", "tests failed" or "crashed: <signal>"."""
    passed: bool
    reason: str
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    traceback: str = ""
    duration_s: float = 0.0
    counts: dict = field(default_factory=dict)   # passed / failed / errors / skipped / collected
    layers: dict = field(default_factory=dict)   # kernel fences in the child: name -> "on: ..." / "off: why"

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
    """The private report pipe: signed JSON lines ("<mac> <json>") from the bootstrap's guard."""

    def __init__(self, fd: int):
        super().__init__(fd, limit=1 << 22)

    def messages(self, key: bytes) -> tuple[list[dict], list[str]]:
        """(verified messages in order, problems: lines that are not signed with this run's key)."""
        out, problems = [], []
        if self.total > len(self.data):
            problems.append("more output on the report channel than the harness writes")
        for line in bytes(self.data).split(b"\n"):
            if not line:
                continue
            mac, _, body = line.partition(b" ")
            good = hmac.compare_digest(hashlib.blake2b(body, key=key, digest_size=32).hexdigest().encode(), mac)
            try:
                msg = json.loads(body) if good else None
            except json.JSONDecodeError:
                msg = None
            if isinstance(msg, dict):
                out.append(msg)
            else:
                problems.append(f"unsigned line {line[:80]!r}")
        return out, problems


def child_env(box: str) -> dict[str, str]:
    """The whole environment of the child: nothing inherited, so no keys or tokens leak in."""
    return {"PATH": "/usr/bin:/bin", "HOME": box, "TMPDIR": box, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "DEV": "PYTHON", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "CACHELEVEL": "0", "TINYUOP_BLOCK_LIBRARY": os.path.join(box, ".library"),
            "PARALLEL": "0",  # tinygrad compiles in-process instead of spawning a worker pool
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # only the harness's plugin, none found on the path


def _code_roots() -> list[str]:
    """Where trusted Python code lives: the installation and the TinyUOp sources."""
    import sysconfig
    import uop_engine
    paths = sysconfig.get_paths()
    return sorted({sys.prefix, sys.base_prefix, sys.exec_prefix, paths["stdlib"], paths["platstdlib"],
                   paths["purelib"], paths["platlib"], str(Path(uop_engine.__file__).resolve().parent.parent)})


def _read_roots() -> list[str]:
    # no /proc: /proc/self/mem and /proc/self/environ would hand the process its own memory
    return sorted({*_code_roots(), "/dev/null", "/dev/urandom", "/sys/devices/system/cpu", "/etc/localtime",
                   "/usr/share/zoneinfo"})


def run_tests(files: dict[str, str], tests: list[str] | None = None, timeout_s: float = 60.0,
              memory_mb: int = 2048, file_size_mb: int = 64, secrets: tuple[str, ...] = (),
              screen: bool = True, os_layers: bool = True, disk_mb: int = 256) -> SandboxResult:
    """Screen `files` (name -> source), write them to a fresh folder and run pytest on `tests`
    (default: every test_*.py) in the fenced child. `secrets` are cut out of all text returned.
    `file_size_mb` caps each file, `disk_mb` all files of the run together (reason "disk").
    `screen=False` skips the static screen and `os_layers=False` the kernel fences (network
    namespace, Landlock, seccomp): only to test the other layers on their own."""
    if timeout_s <= 0 or memory_mb < 256:
        raise ValueError("timeout_s must be > 0 and memory_mb >= 256 (the interpreter, numpy and tinygrad "
                         "need about 200 MB of address space)")
    if disk_mb < 1 or file_size_mb < 1:
        raise ValueError("disk_mb and file_size_mb must be >= 1 (MB the run's files may take)")
    for name in files:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\.(py|txt|json)", name):
            raise ValueError(f"file name {name!r} is not allowed: use plain names like my_block.py")
        if name == "conftest.py":
            raise ValueError("file name 'conftest.py' is not allowed: pytest would load it as a plugin; put "
                             "fixtures in the test file")
    tests = tests if tests is not None else sorted(n for n in files if n.startswith("test_") and n.endswith(".py"))
    if not tests:
        return SandboxResult(False, "tests failed", None, traceback="no test file (name it test_<block>.py)")
    problems = screen_files(files) if screen else []
    if problems:
        what = problems[0].split(": ", 1)[-1]
        return SandboxResult(False, f"forbidden: {what}", None, traceback="static screen refused the code:\n"
                             + "\n".join(problems))
    box = os.path.realpath(tempfile.mkdtemp(prefix="tinyuop_sandbox_"))
    try:
        return _run(box, files, tests, timeout_s, memory_mb, file_size_mb, secrets, os_layers, disk_mb)
    finally:
        shutil.rmtree(box, ignore_errors=True)


def _run(box: str, files: dict[str, str], tests: list[str], timeout_s: float, memory_mb: int,
         file_size_mb: int, secrets: tuple[str, ...], os_layers: bool, disk_mb: int) -> SandboxResult:
    import uop_engine
    for name, src in files.items():
        Path(box, name).write_text(src)
    ini = Path(box, ".pytest.ini")
    ini.write_text("[pytest]\n")
    key = os.urandom(32)  # signs the child's report; sent on stdin, never on the command line
    report_r, report_w = os.pipe()
    cfg = {"dir": box, "src": str(Path(uop_engine.__file__).resolve().parent.parent), "tests": tests,
           "ini": str(ini), "report_fd": report_w, "timeout_s": timeout_s, "memory_mb": memory_mb,
           "file_size_mb": file_size_mb, "read_roots": _read_roots(), "code_roots": _code_roots(),
           "os_layers": os_layers, "watch": sorted(ALLOWED_IMPORTS - {"__future__"})}
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen([sys.executable, "-I", "-B", str(_BOOT)], cwd=box, env=child_env(box),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                pass_fds=(report_w,), start_new_session=True)
    finally:
        os.close(report_w)
    out, err, rep = _Tail(os.dup(proc.stdout.fileno())), _Tail(os.dup(proc.stderr.fileno())), _Lines(report_r)
    proc.stdout.close()
    proc.stderr.close()
    for t in (out, err, rep):
        t.start()
    try:
        proc.stdin.write(key.hex().encode() + b"\n" + json.dumps(cfg).encode())
        proc.stdin.close()
    except OSError:  # the child died before reading its configuration: stderr says why
        pass
    timed_out, disk, watch, deadline = False, None, DiskWatch(box, disk_mb), time.monotonic() + timeout_s
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            try:
                proc.wait(timeout=min(POLL_S, left))
                break
            except subprocess.TimeoutExpired:
                disk = watch.over(proc.pid)
                if disk is not None:
                    break
    finally:
        try:  # the whole group: the child and anything it managed to start
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
    if disk is None and not timed_out:
        disk = watch.over()  # a quick writer may have finished between two polls
    for t in (out, err, rep):
        t.join(timeout=5)
    dt = time.monotonic() - t0
    res = SandboxResult(False, "", proc.returncode, redact(out.text(), secrets), redact(err.text(), secrets),
                        duration_s=round(dt, 3))
    msgs, forged = rep.messages(key)
    _judge(res, msgs, forged, timed_out, timeout_s, lambda s: redact(s, secrets), disk)
    return res


def _judge(res: SandboxResult, msgs: list[dict], forged: list[str], timed_out: bool, timeout_s: float,
           clean, disk: str | None = None) -> None:
    """Set res.passed / reason / traceback from the verified messages and the exit status."""
    rc = res.returncode
    layers = next((m for m in msgs if m.get("kind") == "layers"), None)
    res.layers = dict(layers.get("layers", {})) if layers else {}
    violation = next((m for m in msgs if m.get("kind") == "violation"), None)
    results = [i for i, m in enumerate(msgs) if m.get("kind") == "result"]
    final = msgs[results[0]] if results else None
    if len(results) > 1:
        forged.append(f"{len(results)} result messages (the harness writes one)")
    elif results and results[0] != len(msgs) - 1:
        forged.append("messages after the result")
    if final is not None and final.get("exit") != rc:
        forged.append(f"the result says exit code {final.get('exit')} but the process ended with {rc}")
    if final:
        res.counts = {k: final.get(k, 0) for k in ("passed", "failed", "errors", "skipped", "collected")}
        res.traceback = clean("\n\n".join(f"[{f['where']}] {f['test']}\n{f['text']}" for f in final["failures"]))
    if timed_out:
        res.reason = "timeout"
        res.traceback = (res.traceback or "") + f"\nno result after {timeout_s:g} s: the process group was killed" \
            "\n" + res.stdout[-2000:]
    elif disk is not None:
        res.reason = "disk"
        res.traceback = disk + "\n" + (res.traceback or res.stdout[-2000:])
    elif violation:
        res.reason = f"forbidden: {clean(violation['what'])}"
        res.traceback = clean(violation["stack"])
    elif forged:
        res.reason = "forbidden: tampering with the sandbox's report channel (forged test result)"
        res.traceback = "the parent refused the report: " + "; ".join(forged) + "\n" + res.stderr[-3000:]
    elif final and final.get("tampered"):
        res.reason = "forbidden: changing pytest or library code during the run (" + clean(final["tampered"][0]) + ")"
        res.traceback = "the harness found: " + "; ".join(clean(t) for t in final["tampered"]) + "\n" + res.traceback
    elif rc == VIOLATION_EXIT:
        res.reason = "forbidden: an action refused by the sandbox"
        res.traceback = res.stderr[-4000:]
    elif rc == GUARD_EXIT:
        res.reason = "forbidden: the sandbox guard could not check an action"
        res.traceback = res.stderr[-4000:]
    elif (final and final.get("memory")) or "MemoryError" in res.stderr[-4000:]:
        res.reason = "memory"
        res.traceback = res.traceback or res.stderr[-4000:]
    elif final is None:
        sig = -rc if rc and rc < 0 else None
        res.reason = f"crashed: {signal.Signals(sig).name}" if sig else f"crashed: exit code {rc} before the tests " \
                                                                        "reported"
        res.traceback = res.stderr[-4000:] or res.stdout[-4000:]
    elif rc == 0 and final.get("passed", 0) > 0 and final.get("passed") == final.get("collected") \
            and not final.get("failed") and not final.get("errors") and not final.get("skipped"):
        res.passed, res.reason = True, "passed"
    else:
        res.reason = "tests failed"
        n, ran = final.get("collected", 0), final.get("passed", 0) + final.get("failed", 0)
        notes = []
        if final.get("skipped"):
            notes.append(f"{final['skipped']} test(s) skipped: every test must run and pass")
        if ran < n and not final.get("errors"):
            notes.append(f"only {ran} of {n} collected tests ran (pytest stopped early)")
        if not final.get("passed"):
            notes.append("no test passed (define test_* functions)")
        if not res.traceback:
            res.traceback = res.stdout[-4000:] or res.stderr[-4000:]
        if notes:
            res.traceback = "\n".join(notes) + "\n" + res.traceback
