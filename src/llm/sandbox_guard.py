"""The audit hook of the sandboxed child (installed by `llm.sandbox_boot`, loaded by path).

From `install_guard` on, the process may not open sockets, start processes, load foreign
code through ctypes, touch files outside the sandbox folder (writes) and the Python
installation (reads), write Python modules or extensions anywhere (a later import would run
them unscreened), nor look at frames, code objects or the garbage collector's object lists
from generated code. A refused action is reported to the parent on the private report pipe
and ends the process at once with VIOLATION_EXIT, so the generated code cannot catch it.

"Generated code" is decided by the file of the calling frame: the sandbox folder, or code
compiled from strings. A few trusted library functions read an attribute or frame that their
caller names (`functools.update_wrapper(x, tb, assigned=("tb_frame",))`, `inspect.stack()`):
for those (`_FORWARDERS`) the guard looks past them to the code that called them.

The guard keeps no state that code can change: everything it uses is bound in the closure
of a function that nothing in Python refers to (the interpreter holds audit hooks where no
Python code can list them, and `gc.get_*` is refused), it never calls back into objects the
code supplied (no repr, no __fspath__, no __eq__ of foreign types), and it never raises.
The per-run key that signs the report lives only there, inside a keyed BLAKE2b object it
cannot be read back from; the guard signs a result only when the harness itself (`_report`
called by `main` of the bootstrap) hands it over.

This file imports nothing from `llm` (the child must not load that package).
"""
import _io
import _json
import os
import sys

VIOLATION_EXIT = 86   # a refused action (mirrored in llm.sandbox)
GUARD_EXIT = 87       # the guard could not check an action (mirrored in llm.sandbox)
RESULT_EVENT = "tinyuop.result"

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
# files Python would import: written at run time they would run unscreened (the folder is on sys.path)
_MODULE_SUFFIXES = (".py", ".pyc", ".pyo", ".pyw", ".pyd", ".so", ".pth")
# events whose second argument is where a file ends up
_MOVING = frozenset({"os.rename", "os.link", "os.symlink", "shutil.copyfile", "shutil.move"})
# trusted functions that hand their caller an attribute or frame the caller names: the guard
# judges their caller instead. (file suffix, function names or None for every function)
_FORWARDERS = (("/functools.py", frozenset({"update_wrapper", "wraps"})),
               ("/string.py", frozenset({"get_field", "vformat", "_vformat", "format"})),
               ("/inspect.py", frozenset({"currentframe", "stack", "trace", "getouterframes", "getinnerframes",
                                          "getframeinfo", "getattr_static", "getmembers", "_getmembers"})),
               ("/traceback.py", frozenset({"walk_stack", "walk_tb", "extract_stack", "extract_tb", "extract",
                                            "_extract_from_extended_frame_gen", "__init__"})),
               ("/logging/__init__.py", frozenset({"<lambda>", "currentframe", "findCaller"})),
               ("/_pytest/_code/code.py", None))


def install_guard(box: str, read_roots: list[str], code_roots: list[str], report_fd: int, signer,
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
    module_suffixes, forwarders, moving = _MODULE_SUFFIXES, _FORWARDERS, _MOVING

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

    def is_module(p: str) -> bool:
        for suffix in module_suffixes:
            if p.endswith(suffix):
                return True
        return False

    def past_forwarders(f):
        """The first caller that is not a trusted forwarder (_FORWARDERS) acting for its own caller."""
        n = 0
        while f is not None and n < 32 and not untrusted(f):
            co = f.f_code
            fn, name = co.co_filename, co.co_name
            fwd = False
            if _type(fn) is _str and _type(name) is _str:
                for suffix, names in forwarders:
                    if fn.endswith(suffix) and (names is None or name in names):
                        fwd = True
                        break
            if not fwd:
                return f
            f, n = f.f_back, n + 1
        return f

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
                    elif writing and (is_module(p) or is_module(rp)):
                        what = f"open({p!r}) for writing a Python module or extension (an import would run it)"
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
                    elif p and i == 1 and event in moving and is_module(p):
                        what = f"{event} to {p!r}, a Python module or extension (an import would run it)"
                    if what is not None:
                        break
            elif event in introspection:
                up = past_forwarders(_getframe(0).f_back)
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
