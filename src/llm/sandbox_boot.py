"""Child-side bootstrap of the sandbox: `python -I -B sandbox_boot.py`, configuration on stdin.

Order matters:
1. read the per-run key and the configuration from stdin (not argv: nothing to find later),
   then point stdin at /dev/null;
2. resource limits; the kernel fences of `llm.oslimits` that need a single thread (network
   namespace, Landlock);
3. the trusted imports (numpy, tinygrad, pytest and the engine load C extensions and
   foreign libraries); the seccomp filter (no new processes, sockets, ...);
4. the audit hook (`_install_guard`), and only then the generated code, through pytest.

From the hook on, the process may not open sockets, start processes, load foreign code
through ctypes, touch files outside the sandbox folder (writes) and the Python installation
(reads), nor look at frames, code objects or the garbage collector's object lists from
generated code. A refused action is reported to the parent on the private report pipe and
ends the process at once with VIOLATION_EXIT, so the generated code cannot catch it.

The guard keeps no state that code can change: everything it uses is bound in the closure
of a function that nothing in Python refers to (the interpreter holds audit hooks where no
Python code can list them, and `gc.get_*` is refused), it never calls back into objects the
code supplied (no repr, no __fspath__, no __eq__ of foreign types), and it never raises.
The per-run key that signs the report lives only there, inside a keyed BLAKE2b object it
cannot be read back from; the parent accepts a result only with a valid signature, only
once, only last, only with a matching exit status, and the guard signs one only when the
harness itself (`_report` called by `main`) hands it over.

This file is run as a script; it imports nothing from `llm` (the parent may hold secrets in
that package's state, the child must not); `oslimits.py` is loaded by its path.
"""
import _blake2
import _io
import _json
import importlib.util
import json
import os
import resource
import sys

VIOLATION_EXIT = 86   # a refused action (mirrored in llm.sandbox)
GUARD_EXIT = 87       # the guard could not check an action (mirrored in llm.sandbox)
RESULT_EVENT = "tinyuop.result"


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


def _oslimits():
    spec = importlib.util.spec_from_file_location("tinyuop_oslimits", os.path.join(os.path.dirname(__file__),
                                                                                  "oslimits.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _preload() -> None:
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


_ALWAYS = frozenset({
    "os.system", "os.kill", "os.killpg", "os.setuid", "os.setgid", "sys.remote_exec", "resource.setrlimit",
    "resource.prlimit", "sys.addaudithook", "os.chroot", "fcntl.ioctl", "gc.get_objects", "gc.get_referrers",
    "gc.get_referents", "sys._current_frames", "sys.settrace", "sys.setprofile"})
# tinygrad's pure-Python device pickles its own kernels; any other unpickling can call anything
_PICKLE_MODULES = ("tinygrad.uop", "tinygrad.dtype", "tinygrad.codegen", "tinygrad.renderer")
_PREFIXES = ("socket.", "ctypes.", "subprocess.", "os.exec", "os.spawn", "os.posix_spawn", "os.fork", "os.forkpty",
             "pty.", "urllib.", "http.", "ftplib.", "smtplib.", "webbrowser.", "winreg.", "_winapi.", "msvcrt.")
# refused when generated code (anything outside the trusted code roots) is the direct caller
_INTROSPECTION = frozenset({"sys._getframe", "object.__getattr__", "object.__setattr__", "object.__delattr__",
                            "code.__new__", "function.__new__", "compile", "exec", "marshal.loads", "marshal.load",
                            "sys._getframemodulename"})
_READ_EVENTS = frozenset({"os.listdir", "os.scandir", "os.listxattr", "os.getxattr"})
# event -> positions of dir_fd arguments (a real descriptor there would resolve elsewhere)
_WRITE_EVENTS = {"os.remove": (1,), "os.rmdir": (1,), "os.rename": (2, 3), "os.mkdir": (2,), "os.chmod": (2,),
                 "os.chown": (3,), "os.symlink": (2,), "os.link": (2, 3), "os.truncate": (), "os.utime": (3,),
                 "os.chdir": (), "os.chflags": (), "os.lchflags": (), "os.setxattr": (), "os.removexattr": (),
                 "shutil.rmtree": (1,), "shutil.copyfile": (), "shutil.copymode": (), "shutil.copystat": (),
                 "shutil.move": (), "shutil.make_archive": (), "shutil.unpack_archive": (), "shutil.chown": (),
                 "tempfile.mkdtemp": (), "tempfile.mkstemp": (), "sqlite3.connect": ()}
_NO_FD_PATH = frozenset({"os.chmod", "os.chown", "os.utime", "os.chflags", "os.setxattr", "os.removexattr"})


def _install_guard(box: str, read_roots: list[str], code_roots: list[str], report_fd: int, signer,
                   layers_json: str, result_codes: tuple, pickle_root: str) -> None:
    # Bind every builtin and C function now: module attributes and builtins can be swapped
    # by code that gets past the screen, these closure cells cannot be reached.
    _type, _str, _bytes, _int, _len, _repr, _range = type, str, bytes, int, len, repr, range
    _Base, _OSError, _ValueError, _issub = BaseException, OSError, ValueError, issubclass
    _exit, _write, _lstat, _readlink, _getcwd = os._exit, os.write, os.lstat, os.readlink, os.getcwd
    _getframe, _open, _enc = sys._getframe, _io.open, _json.encode_basestring_ascii
    _frame_type, _name_of = _type(_getframe()), type.__dict__["__name__"].__get__
    _join, _bjoin, _simple = "".join, b"".join, (str, bytes, int, float, bool, type(None))
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    always, prefixes, introspection, read_events = _ALWAYS, _PREFIXES, _INTROSPECTION, _READ_EVENTS
    write_events, no_fd_path, result_event = dict(_WRITE_EVENTS), _NO_FD_PATH, RESULT_EVENT
    violation_exit, guard_exit, pickle_modules = VIOLATION_EXIT, GUARD_EXIT, _PICKLE_MODULES

    def _type_name(t) -> str:  # exact str: a metaclass cannot run code here, a str subclass is copied
        return _join((_name_of(t),))

    def real(p: str) -> str:
        """os.path.realpath without Python-level helpers that could have been patched."""
        if not p.startswith("/"):
            p = _getcwd() + "/" + p
        todo, out, links = p.split("/"), [], 0
        while todo:
            name = todo.pop(0)
            if name == "" or name == ".":
                continue
            if name == "..":
                if out:
                    out.pop()
                continue
            cand = "/" + "/".join(out) + ("/" if out else "") + name
            try:
                mode = _lstat(cand).st_mode
                target = _readlink(cand) if mode & 0o170000 == 0o120000 and links < 40 else None
            except (_OSError, _ValueError):
                out.append(name)  # missing: keep it as written, like realpath(strict=False)
                continue
            if target is not None:
                links += 1
                if target.startswith("/"):
                    out = []
                todo = target.split("/") + todo
            else:
                out.append(name)
        return "/" + "/".join(out)

    def roots(paths) -> tuple:
        out = []
        for r in paths:
            for v in (r, real(r)):
                v = v.rstrip("/") or "/"
                out.append((v, v + "/" if v != "/" else "/"))
        return tuple(out)

    box_r = roots([box])
    read_r = roots([box, *read_roots])
    write_r = box_r + roots(["/dev/null"])
    code_r = roots(code_roots)
    pickle_r = roots([pickle_root])

    def within(p: str, rs: tuple) -> bool:
        for r, rs_ in rs:
            if p == r or p.startswith(rs_):
                return True
        return False

    def text(a):
        """An exact str for a path argument; None for descriptors/None; False for other objects."""
        t = _type(a)
        if t is _str:
            return a
        if t is _bytes:
            return a.decode("utf-8", "surrogateescape")
        if t is _int or a is None:
            return None
        if _issub(t, _str):
            return _join((a,))  # an exact copy, no method of the subclass runs
        if _issub(t, _bytes):
            return _bjoin((a,)).decode("utf-8", "surrogateescape")
        return False

    def brief(args) -> str:
        parts = []
        for a in args:
            t = _type(a)
            ok = False
            for s in _simple:
                ok = ok or t is s
            parts.append(_repr(a) if ok else _join(("<", _type_name(t), ">")))
        s = "(" + ", ".join(parts) + ")"
        return s if _len(s) < 160 else s[:157] + "..."

    def untrusted(f) -> bool:
        """Is `f` generated code (or code compiled from a string) rather than the installation?"""
        if f is None:
            return False
        fn = f.f_code.co_filename
        if _type(fn) is not _str:
            return True
        if fn.startswith("<frozen "):
            return False
        return within(fn, box_r) or not within(fn, code_r)

    def send(body: str) -> None:
        data = body.encode()
        mac = signer.copy()  # keyed BLAKE2b: the key cannot be read back out of it
        mac.update(data)
        line = (mac.hexdigest() + " ").encode() + data + b"\n"
        while line:
            line = line[_write(report_fd, line):]

    def stack_text(f) -> str:
        frames, sources = [], {}
        while f is not None and _len(frames) < 40:
            co = f.f_code
            fn, ln, name = co.co_filename, f.f_lineno, co.co_name
            fn = fn if _type(fn) is _str else "?"  # a str subclass could run code when formatted
            name = name if _type(name) is _str else "?"
            ln = ln if _type(ln) is _int else 0
            src = ""
            if within(fn, box_r):
                if fn not in sources:
                    try:
                        fh = _open(fn, "rb")
                        try:
                            sources[fn] = fh.read().split(b"\n")
                        finally:
                            fh.close()
                    except _OSError:
                        sources[fn] = []
                lines = sources[fn]
                if 0 < ln <= _len(lines):
                    src = "\n    " + lines[ln - 1].decode("utf-8", "replace").strip()
            frames.append(f'  File "{fn}", line {ln}, in {name}{src}\n')
            f = f.f_back
        frames.reverse()
        return _join(frames)

    def refuse(what: str, f) -> None:
        try:
            stack = stack_text(f)
            send('{"kind": "violation", "what": ' + _enc(what) + ', "stack": ' + _enc(stack[-6000:]) + "}")
            _write(2, ("\nSANDBOX: forbidden: " + what + "\n" + stack[-3000:]).encode("utf-8", "replace"))
        finally:
            _exit(violation_exit)  # uncatchable: the generated code must not carry on

    def hook(event, args):
        try:
            if _type(event) is not _str:
                return refuse("an audit event with a non-string name", _getframe(0).f_back)
            # the hook looking at its own frame and at code objects: answer before anything else
            if event == "object.__getattr__" and _len(args) == 2 and _type(args[1]) is _str \
                    and args[1] == "f_code":
                return
            if event == "sys._getframe" and _len(args) == 1 and _type(args[0]) is _frame_type \
                    and args[0].f_code is hook_code:
                return
            what = None
            if event in always or event.startswith(prefixes):
                what = event + " " + brief(args)
            elif event == "open" and _len(args) >= 1:
                p = text(args[0])
                mode = args[1] if _len(args) > 1 and _type(args[1]) is _str else ""
                flags = args[2] if _len(args) > 2 and _type(args[2]) is _int else 0
                if p is False:
                    what = "open() of a path given as " + _type_name(_type(args[0]))
                elif p is not None:
                    rp = real(p)
                    writing = (flags & write_flags) != 0
                    for c in "wax+":
                        writing = writing or c in mode
                    if writing and not within(rp, write_r):
                        what = f"open({p!r}) for writing outside the sandbox folder"
                    elif not writing and not within(rp, read_r):
                        what = f"open({p!r}) for reading outside the sandbox and the Python installation"
            elif event in read_events:
                p = text(args[0]) if _len(args) else "."
                if p is False:
                    what = event + " of a path given as " + _type_name(_type(args[0]))
                elif p is not None and not within(real(p), read_r):
                    what = f"{event}({p!r}) outside the sandbox and the Python installation"
            elif event in write_events:
                for i in _range(_len(args)):
                    a = args[i]
                    p = text(a)
                    if i in write_events[event] and _type(a) is _int and a >= 0:
                        what = f"{event} relative to a directory descriptor (dir_fd)"
                    elif i == 0 and p is None and _type(a) is _int and event in no_fd_path:
                        what = f"{event} on an open file descriptor"
                    elif p is False and i < 2:
                        what = f"{event} of a path given as " + _type_name(_type(a))
                    elif p and not within(real(p), box_r):
                        what = f"{event}({p!r}) outside the sandbox folder"
                    if what is not None:
                        break
            elif event in introspection:
                up = _getframe(0).f_back
                if untrusted(up):
                    if event.startswith("object."):
                        name = args[1] if _len(args) > 1 and _type(args[1]) is _str else "?"
                        what = f"{event} {name!r} by generated code (frame, code and function internals)"
                    elif event == "compile" or event == "exec":
                        what = f"{event} of dynamic code by generated code (eval/exec/compile)"
                    else:
                        what = f"{event} by generated code (frame and code introspection)"
            elif event == "pickle.find_class":
                up = _getframe(0).f_back
                fn = up.f_code.co_filename if up is not None else None
                ok = _type(fn) is _str and within(fn, pickle_r) and _len(args) == 2 and _type(args[0]) is _str \
                    and _type(args[1]) is _str and args[0].startswith(pickle_modules)
                if not ok:
                    what = "unpickling " + brief(args) + " (pickle can call any function)"
            elif event == result_event:
                up = _getframe(0).f_back
                # only the harness: _report called by main called by the script itself
                ok = up is not None and up.f_code is result_codes[0] and up.f_back is not None \
                    and up.f_back.f_code is result_codes[1] and up.f_back.f_back is not None \
                    and up.f_back.f_back.f_back is None and _len(args) == 2 \
                    and _type(args[0]) is _str and _type(args[1]) is _int
                if not ok:
                    what = "a sandbox result sent from outside the harness (forged result)"
                else:
                    send(args[0])
                    _exit(args[1])
            if what is not None:
                refuse(what, _getframe(0).f_back)
        except _Base as e:  # never let an exception, and with it this frame, reach the caller
            try:
                _write(2, ("\nSANDBOX: the guard failed on " + (event if _type(event) is _str else "?") + ": "
                           + _type_name(_type(e)) + "\n").encode("utf-8", "replace"))
            finally:
                _exit(guard_exit)

    hook_code = hook.__code__
    send('{"kind": "layers", "layers": ' + layers_json + "}")
    sys.addaudithook(hook)


class _Collector:
    """pytest plugin: outcome per test, failure text, and whether a MemoryError was seen."""

    def __init__(self):
        self.passed, self.failed, self.errors, self.skipped, self.collected, self.memory = 0, 0, 0, 0, 0, False
        self.failures: list[dict] = []

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

    def summary(self, code: int) -> dict:
        return {"kind": "result", "exit": code, "passed": self.passed, "failed": self.failed, "errors": self.errors,
                "skipped": self.skipped, "collected": self.collected, "memory": self.memory,
                "failures": self.failures}


def _report(payload: str, code: int, audit) -> None:
    """Hand the result to the guard, which signs it, writes it and ends the process."""
    audit(RESULT_EVENT, payload, code)


def main() -> None:
    cfg, key = _read_config()
    _limits(cfg)
    os.chdir(cfg["dir"])
    sys.dont_write_bytecode = True
    sys.path[:0] = [cfg["dir"], cfg["src"]]
    layers = {"network": "off: switched off by the caller", "filesystem": "off: switched off by the caller",
              "syscalls": "off: switched off by the caller"}
    osl = _oslimits() if cfg["os_layers"] else None
    if osl:  # these two need a single-threaded process: before numpy and friends start threads
        layers["network"] = osl.isolate_network()
        layers["filesystem"] = osl.restrict_filesystem(cfg["dir"], cfg["read_roots"])
    _preload()
    if osl:
        layers["syscalls"] = osl.deny_syscalls()
    import pytest
    collector = _Collector()
    args = ["-q", "-p", "no:cacheprovider", "-p", "no:faulthandler", "-c", cfg["ini"], "--rootdir", cfg["dir"],
            "--basetemp", os.path.join(cfg["dir"], ".pytest_tmp"), "-o", "console_output_style=classic",
            *cfg["tests"]]
    # bound before any generated code runs: a patched json, sys or pytest cannot reach the result
    dumps, audit, run, flush_out, flush_err = json.dumps, sys.audit, pytest.main, sys.stdout.flush, sys.stderr.flush
    signer = _blake2.blake2b(key=key, digest_size=32)
    del key
    _install_guard(cfg["dir"], cfg["read_roots"], cfg["code_roots"], cfg["report_fd"], signer, json.dumps(layers),
                   (_report.__code__, main.__code__), os.path.dirname(sys.modules["tinygrad"].__file__))
    del signer
    code = int(run(args, plugins=[collector]))
    payload = dumps(collector.summary(code))
    flush_out()
    flush_err()
    _report(payload, code, audit)
    os._exit(GUARD_EXIT)  # not reached: the guard ends the process after writing the result


if __name__ == "__main__":
    main()
