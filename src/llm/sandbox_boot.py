"""Child-side bootstrap of the sandbox: `python -I sandbox_boot.py '<config json>'`.

Order matters: resource limits first, then the trusted imports (numpy, tinygrad, pytest and
the engine, which load C extensions and foreign libraries), then the audit hook, and only
then the generated code (through pytest). From the hook on, the process may not open
sockets, start processes, load foreign code through ctypes, or touch files outside the
sandbox folder (writes) and the Python installation (reads). A refused action is reported
to the parent on a private pipe and ends the process at once with VIOLATION_EXIT, so the
generated code cannot catch the error and carry on.

This file is run as a script; it imports nothing from `llm` (the parent may hold secrets
in that package's state, the child must not).
"""
import json
import os
import resource
import sys

VIOLATION_EXIT = 86


def _limits(cfg: dict) -> None:
    mb = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cfg["memory_mb"] * mb, cfg["memory_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["file_size_mb"] * mb, cfg["file_size_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    cpu = int(cfg["timeout_s"]) + 5  # backstop: the parent's wall-clock kill comes first
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def _preload(cfg: dict) -> None:
    """Trusted imports before the hook (they dlopen libraries and read their own files)."""
    import numpy  # noqa: F401
    import pytest  # noqa: F401
    from tinygrad import Tensor
    import uop_engine  # noqa: F401
    import uop_engine.ops  # noqa: F401
    import uop_engine.plugins  # noqa: F401
    from uop_engine.infer import analyze  # noqa: F401
    # one tiny realize so the device backend finishes its lazy imports now
    (Tensor([1.0, 2.0]) * 2).sum().numpy()
    import traceback  # noqa: F401  (used by the hook; importing it later would re-enter)
    import linecache  # noqa: F401


def _within(path: str, roots: list[str]) -> bool:
    real = os.path.realpath(path)
    return any(real == r or real.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _install_guard(cfg: dict) -> None:
    report_fd = cfg["report_fd"]
    box = os.path.realpath(cfg["dir"])
    read_roots = [box] + [os.path.realpath(p) for p in cfg["read_roots"]]
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    blocked_prefixes = ("socket.", "ctypes.", "subprocess.", "os.exec", "os.spawn", "os.posix_spawn", "os.fork",
                        "os.forkpty", "pty.", "urllib.", "http.", "ftplib.", "smtplib.", "webbrowser.", "winreg.",
                        "_winapi.", "msvcrt.")
    blocked = {"os.system", "os.kill", "os.killpg", "os.setuid", "os.setgid", "sys.remote_exec", "resource.setrlimit",
               "resource.prlimit", "sys.addaudithook", "os.chroot", "fcntl.ioctl"}
    path_events = {"os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.chmod", "os.chown", "os.symlink",
                   "os.link", "os.truncate", "os.utime", "os.chdir", "os.chflags", "os.lchflags", "os.setxattr",
                   "os.removexattr", "shutil.rmtree", "shutil.copyfile", "shutil.copymode", "shutil.copystat",
                   "shutil.move", "shutil.make_archive", "shutil.unpack_archive", "tempfile.mkdtemp",
                   "tempfile.mkstemp", "sqlite3.connect"}
    state = {"busy": False}

    def refuse(what: str) -> None:
        import traceback
        stack = "".join(traceback.format_stack(sys._getframe(2)))
        msg = json.dumps({"kind": "violation", "what": what, "stack": stack[-6000:]}) + "\n"
        try:
            os.write(report_fd, msg.encode())
            os.write(2, f"\nSANDBOX: forbidden: {what}\n{stack[-3000:]}".encode())
        finally:
            os._exit(VIOLATION_EXIT)  # uncatchable: the generated code must not carry on

    def hook(event: str, args: tuple) -> None:
        if state["busy"]:
            return
        state["busy"] = True
        try:
            what = None
            if event in blocked or event.startswith(blocked_prefixes):
                what = f"{event} {_brief(args)}"
            elif event == "open":
                path, mode, flags = (tuple(args) + (None, None, 0))[:3]
                if isinstance(path, (str, bytes, os.PathLike)):
                    p = os.fsdecode(path)
                    writing = (mode is not None and any(c in str(mode) for c in "wax+")) or bool((flags or 0) & write_flags)
                    if writing and not _within(p, [box, "/dev/null"]):
                        what = f"open({p!r}) for writing outside the sandbox folder"
                    elif not writing and not _within(p, read_roots):
                        what = f"open({p!r}) for reading outside the sandbox and the Python installation"
            elif event in path_events:
                for a in args:
                    if isinstance(a, (str, bytes, os.PathLike)) and not _within(os.fsdecode(a), [box]):
                        what = f"{event}({os.fsdecode(a)!r}) outside the sandbox folder"
                        break
            if what is not None:
                refuse(what)
        finally:
            state["busy"] = False

    sys.addaudithook(hook)


def _brief(args: tuple) -> str:
    text = repr(args)
    return text if len(text) < 160 else text[:157] + "..."


class _Collector:
    """pytest plugin: outcome per test, failure text, and whether a MemoryError was seen."""

    def __init__(self):
        self.passed, self.failed, self.errors, self.memory = 0, 0, 0, False
        self.failures: list[dict] = []

    def _record(self, report, where: str) -> None:
        text = str(report.longrepr)
        if "MemoryError" in text:
            self.memory = True
        if len(self.failures) < 10:
            self.failures.append({"test": report.nodeid, "where": where, "text": text[-8000:]})

    def pytest_runtest_logreport(self, report):
        if report.when == "call" and report.passed:
            self.passed += 1
        elif report.failed:
            self.failed += report.when == "call"
            self.errors += report.when != "call"
            self._record(report, report.when)

    def pytest_collectreport(self, report):
        if report.failed:
            self.errors += 1
            self._record(report, "collect")


def main() -> None:
    cfg = json.loads(sys.argv[1])
    _limits(cfg)
    os.chdir(cfg["dir"])
    sys.dont_write_bytecode = True
    sys.path[:0] = [cfg["dir"], cfg["src"]]
    _preload(cfg)
    import pytest
    collector = _Collector()
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:faulthandler", "-c", cfg["ini"], "--rootdir", cfg["dir"],
            "--basetemp", os.path.join(cfg["dir"], ".pytest_tmp"), "-o", "console_output_style=classic",
            *cfg["tests"]]
    _install_guard(cfg)
    code = pytest.main(args, plugins=[collector])
    result = {"kind": "result", "exit": int(code), "passed": collector.passed, "failed": collector.failed,
              "errors": collector.errors, "memory": collector.memory, "failures": collector.failures}
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(cfg["report_fd"], (json.dumps(result) + "\n").encode())
    os._exit(int(code))


if __name__ == "__main__":
    main()
