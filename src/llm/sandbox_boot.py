"""Child-side bootstrap of the sandbox: `python -I -B sandbox_boot.py`, configuration on stdin.

Order matters:
1. read the per-run key and the configuration from stdin (not argv: nothing to find later),
   then point stdin at /dev/null;
2. resource limits; the kernel fences of `llm.oslimits` that need a single thread (network
   namespace, Landlock);
3. the trusted imports (numpy, tinygrad, pytest and the engine load C extensions and
   foreign libraries); the seccomp filter (no new processes, sockets, ...);
4. the audit hook (`llm.sandbox_guard`), and only then the generated code, through pytest.

The sandbox folder is put at the *end* of sys.path (and pytest imports with
`--import-mode=append`), so a file the code writes cannot shadow a module a library imports
later; the guard refuses writing .py/.so files anyway.

The counts the harness reports come from this process, the same one that runs the generated
code and its own tests: they are evidence for the reviewer, not a security boundary (see
docs/security.md). Two cross-checks make the plain ways of faking them visible: a pytest
plugin registered during the session, and a public attribute of an allowed module (say
`numpy.testing.assert_allclose`) changed by the time the tests end, are reported as
`tampered` and fail the run.

This file is run as a script; it imports nothing from `llm` (the parent may hold secrets in
that package's state, the child must not); `oslimits.py` and `sandbox_guard.py` are loaded by
their paths.
"""
import _blake2
import importlib.util
import json
import os
import resource
import sys


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"tinyuop_{name}", os.path.join(os.path.dirname(__file__),
                                                                                  f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_guard = _load("sandbox_guard")
VIOLATION_EXIT, GUARD_EXIT, RESULT_EVENT = _guard.VIOLATION_EXIT, _guard.GUARD_EXIT, _guard.RESULT_EVENT


def _read_config() -> tuple[dict, bytes]:
    """stdin: the key as hex on the first line, then the configuration as JSON."""
    buf = bytearray()
    while chunk := os.read(0, 65536):
        buf += chunk
    nl = buf.index(b"\n")
    key = bytes.fromhex(buf[:nl].decode("ascii"))
    cfg = json.loads(bytes(buf[nl + 1:]))
    buf[:] = bytes(len(buf))  # no copy of the key left in this buffer
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return cfg, key


def _limits(cfg: dict) -> None:
    mb = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cfg["memory_mb"] * mb, cfg["memory_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (cfg["file_size_mb"] * mb, cfg["file_size_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    cpu = int(cfg["timeout_s"]) + 5  # backstop: the parent's wall-clock kill comes first
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))


def _preload() -> None:
    """Trusted imports before the hook (they dlopen libraries and read their own files)."""
    import numpy  # noqa: F401
    import numpy.testing  # noqa: F401  (loaded now so the attribute check below sees it)
    import pytest  # noqa: F401
    from tinygrad import Tensor
    import uop_engine  # noqa: F401
    import uop_engine.ops  # noqa: F401
    import uop_engine.plugins  # noqa: F401
    from uop_engine.infer import analyze  # noqa: F401
    # one tiny realize so the device backend finishes its lazy imports now
    (Tensor([1.0, 2.0]) * 2).sum().numpy()


class _Collector:
    """pytest plugin: outcome per test, failure text, whether a MemoryError was seen, and the
    plugins registered while the session ran (none, unless generated code added a hook)."""

    def __init__(self):
        self.passed, self.failed, self.errors, self.skipped, self.collected, self.memory = 0, 0, 0, 0, 0, False
        self.failures: list[dict] = []
        self.plugins: list | None = None
        self.tampered: list[str] = []

    def pytest_sessionstart(self, session):
        self.plugins = list(session.config.pluginmanager.get_plugins())

    def pytest_sessionfinish(self, session):
        pm = session.config.pluginmanager
        for p in pm.get_plugins():
            if self.plugins is not None and not any(p is q for q in self.plugins):
                self.tampered.append(f"pytest plugin {pm.get_name(p)!r} registered during the session")

    def _record(self, report, where: str) -> None:
        text = str(report.longrepr)
        if "MemoryError" in text:
            self.memory = True
        if len(self.failures) < 10:
            self.failures.append({"test": report.nodeid, "where": where, "text": text[-8000:]})

    def pytest_collection_finish(self, session):
        self.collected = len(session.items)

    def pytest_runtest_logreport(self, report):
        if report.when == "call" and report.passed:
            self.passed += 1
        elif report.failed:
            self.failed += report.when == "call"
            self.errors += report.when != "call"
            self._record(report, report.when)
        elif report.skipped:
            self.skipped += 1

    def pytest_collectreport(self, report):
        if report.failed:
            self.errors += 1
            self._record(report, "collect")
        elif report.skipped:
            self.skipped += 1

    def summary(self, code: int, changed: list[str]) -> dict:
        return {"kind": "result", "exit": code, "passed": self.passed, "failed": self.failed, "errors": self.errors,
                "skipped": self.skipped, "collected": self.collected, "memory": self.memory,
                "failures": self.failures, "tampered": (self.tampered + changed)[:20]}


def _library_state(tops: list[str]) -> dict:
    """(module, public attribute) -> object, for the loaded modules generated code may import."""
    state = {}
    for name, mod in list(sys.modules.items()):
        d = getattr(mod, "__dict__", None) if name.split(".")[0] in tops else None
        if type(d) is dict:
            state.update(((name, k), v) for k, v in list(d.items()) if type(k) is str and not k.startswith("_"))
    return state


def _changed(state: dict) -> list[str]:
    missing = object()
    out = []
    for (name, k), v in state.items():
        mod = sys.modules.get(name)
        if mod is not None and mod.__dict__.get(k, missing) is not v:
            out.append(f"{name}.{k} was changed")
    return out


def _report(payload: str, code: int, audit) -> None:
    """Hand the result to the guard, which signs it, writes it and ends the process."""
    audit(RESULT_EVENT, payload, code)


def main() -> None:
    cfg, key = _read_config()
    _limits(cfg)
    os.chdir(cfg["dir"])
    sys.dont_write_bytecode = True
    sys.path.insert(0, cfg["src"])
    sys.path.append(cfg["dir"])  # last: files written at run time cannot shadow library imports
    layers = {"network": "off: switched off by the caller", "filesystem": "off: switched off by the caller",
              "syscalls": "off: switched off by the caller"}
    osl = _load("oslimits") if cfg["os_layers"] else None
    if osl:  # these two need a single-threaded process: before numpy and friends start threads
        layers["network"] = osl.isolate_network()
        layers["filesystem"] = osl.restrict_filesystem(cfg["dir"], cfg["read_roots"])
    _preload()
    if osl:
        layers["syscalls"] = osl.deny_syscalls()
    import pytest
    # the plugin list is taken after pytest's own session plugins (fixtures) registered, and checked first
    _Collector.pytest_sessionstart = pytest.hookimpl(trylast=True)(_Collector.pytest_sessionstart)
    _Collector.pytest_sessionfinish = pytest.hookimpl(tryfirst=True)(_Collector.pytest_sessionfinish)
    collector = _Collector()
    # no debugger (it keeps the running config on a class), no doctests (they run text as code)
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:faulthandler", "-p", "no:debugging", "-p", "no:doctest",
            "-c", cfg["ini"], "--rootdir", cfg["dir"], "--import-mode=append",
            "--basetemp", os.path.join(cfg["dir"], ".pytest_tmp"), "-o", "console_output_style=classic",
            *cfg["tests"]]
    # bound before any generated code runs: a patched json, sys or pytest cannot reach the result
    dumps, audit, run, flush_out, flush_err = json.dumps, sys.audit, pytest.main, sys.stdout.flush, sys.stderr.flush
    changed = _changed
    state = _library_state(cfg["watch"])
    signer = _blake2.blake2b(key=key, digest_size=32)
    del key
    _guard.install_guard(cfg["dir"], cfg["read_roots"], cfg["code_roots"], cfg["report_fd"], signer,
                         json.dumps(layers), (_report.__code__, main.__code__),
                         os.path.dirname(sys.modules["tinygrad"].__file__))
    del signer
    code = int(run(args, plugins=[collector]))
    payload = dumps(collector.summary(code, changed(state)))
    flush_out()
    flush_err()
    _report(payload, code, audit)
    os._exit(GUARD_EXIT)  # not reached: the guard ends the process after writing the result


if __name__ == "__main__":
    main()
