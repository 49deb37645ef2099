"""Kernel-level fences for the sandboxed child (Linux only): network namespace, Landlock, seccomp.

The audit hook in `llm.sandbox_guard` stops generated code at the Python level and says why.
These layers are the second wall, for code that gets past the hook (a screen gap, a bug in
a C extension): they are enforced by the kernel, so nothing in the process can switch them
off once set. Each function returns a short status, "on: ..." or "off: <why>", and never
raises: a layer the platform lacks is reported, and the Python-level guard still applies.

- `isolate_network()`: a new, empty network namespace (no interfaces, not even a working
  loopback), as root directly, otherwise inside a new user namespace mapped to the same uid.
- `restrict_filesystem(box, read_roots)`: Landlock. Reads only under `read_roots`, everything
  under `box` except device files, FIFOs and sockets, nothing else (ABI 4+: no TCP bind or
  connect; ABI 6+: no signals to or abstract sockets of processes outside the sandbox).
- `deny_syscalls()`: seccomp. No new processes or programs (execve, fork, non-thread clone),
  no sockets, no ptrace or reading other processes' memory, no mounts, namespaces, kernel
  modules, keyrings, io_uring, BPF, chmod/chown/xattr changes, device nodes or FIFOs, no
  signal handlers (a handler would see the interrupted frame), no signals to other processes.

This file is loaded by path in the child (it must not import the `llm` package) and is
pure standard library; the functions use ctypes, so they run before the audit hook that
refuses ctypes. Syscall numbers are for x86_64 and aarch64; elsewhere seccomp is off.
"""
from __future__ import annotations

import ctypes
import os
import platform
import struct
import sys

_EPERM, _ENOSYS = 1, 38
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWUSER, _CLONE_NEWNET, _CLONE_THREAD = 0x10000000, 0x40000000, 0x00010000
# landlock_create_ruleset / add_rule / restrict_self have the same numbers on every arch
_LL_CREATE, _LL_ADD, _LL_RESTRICT = 444, 445, 446
_LL_RULE_PATH_BENEATH = 1

# Landlock filesystem rights (include/uapi/linux/landlock.h)
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
MAKE_SYM, REFER, TRUNCATE, IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # the rights a rule on a file may hold
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1

# system libraries a lazily imported C extension may still load (read only, nothing private)
SYSTEM_LIB_ROOTS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib", "/etc/ld.so.cache")


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def _err(what: str) -> str:
    e = ctypes.get_errno()
    return f"off: {what} failed ({os.strerror(e) if e else 'unknown error'})"


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is missing (or not Linux)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        v = _libc().syscall(_LL_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except (OSError, AttributeError):
        return 0
    return max(int(v), 0)


def isolate_network() -> str:
    """Move this (single-threaded) process into a new network namespace with no interfaces."""
    if not sys.platform.startswith("linux"):
        return f"off: network namespaces need Linux (this is {sys.platform})"
    try:
        libc = _libc()
        before = os.readlink("/proc/self/ns/net")
        if os.geteuid() == 0 and libc.unshare(_CLONE_NEWNET) == 0:
            how = "as root"
        else:
            # unprivileged: a user namespace first, mapped to our own uid and gid so files in
            # the sandbox folder keep their owner (needs kernel.unprivileged_userns_clone=1)
            # A half-made user namespace (no uid map) cannot create files, so try it in a
            # throw-away child first and only then here.
            pid = os.fork()
            if pid == 0:
                os._exit(0 if _user_and_net_namespace(libc) is None else 1)
            _, status = os.waitpid(pid, 0)
            if status != 0:
                return "off: no unprivileged user namespaces here (kernel or LSM setting)"
            why = _user_and_net_namespace(libc)
            if why is not None:
                return f"off: {why}"
            how = "in a user namespace"
        after = os.readlink("/proc/self/ns/net")
        if after == before:
            return "off: the network namespace did not change"
        return f"on: empty network namespace ({how})"
    except OSError as e:
        return f"off: {e}"


def _user_and_net_namespace(libc) -> str | None:
    """unshare(CLONE_NEWUSER|CLONE_NEWNET) mapped to our own uid/gid; None when it worked."""
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
        return _err("unshare(CLONE_NEWUSER|CLONE_NEWNET)")[5:]
    try:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            fd = os.open(f"/proc/self/{name}", os.O_WRONLY)
            try:
                os.write(fd, text.encode())
            finally:
                os.close(fd)
    except OSError as e:
        return f"writing the user namespace's id maps failed ({e})"
    return None


def restrict_filesystem(box: str, read_roots: list[str] | tuple[str, ...],
                        write_files: tuple[str, ...] = ("/dev/null",)) -> str:
    """Landlock: full access under `box` (no device files, FIFOs or sockets), read-only under
    `read_roots` and `SYSTEM_LIB_ROOTS`, read/write on `write_files`, nothing else; applies to
    this thread and threads it starts later, so call it while the process has one thread."""
    abi = landlock_abi()
    if abi < 1:
        return "off: Landlock is not available (Linux 5.13+ with landlock in the LSM list)"
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        return f"off: the process already has {threads} threads (Landlock binds the calling thread)"
    fs = (1 << 13) - 1 | (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0) | (IOCTL_DEV if abi >= 5 else 0)
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0
    scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL if abi >= 6 else 0
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    attr = ctypes.create_string_buffer(struct.pack("<QQQ", fs, net, scoped)[:size], size)
    libc = _libc()
    rs = libc.syscall(_LL_CREATE, attr, ctypes.c_size_t(size), ctypes.c_uint32(0))
    if rs < 0:
        return _err("landlock_create_ruleset")
    try:
        box_rights = fs & ~(MAKE_CHAR | MAKE_BLOCK | MAKE_FIFO | MAKE_SOCK | EXECUTE | IOCTL_DEV)
        rules = [(box, box_rights)] + [(p, READ_FILE | READ_DIR) for p in (*read_roots, *SYSTEM_LIB_ROOTS)] \
            + [(p, READ_FILE | WRITE_FILE | (TRUNCATE & fs)) for p in write_files]
        added = 0
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a root that does not exist here: nothing to allow
            try:
                if not os.path.isdir(path):
                    rights &= _FILE_RIGHTS
                rule = ctypes.create_string_buffer(struct.pack("<Qi", rights & fs, fd), 12)
                if libc.syscall(_LL_ADD, ctypes.c_int(rs), ctypes.c_int(_LL_RULE_PATH_BENEATH), rule,
                                ctypes.c_uint32(0)) != 0:
                    return _err(f"landlock_add_rule({path!r})")
                added += 1
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return _err("prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(_LL_RESTRICT, ctypes.c_int(rs), ctypes.c_uint32(0)) != 0:
            return _err("landlock_restrict_self")
    finally:
        os.close(rs)
    extra = ("" if abi < 4 else ", no TCP bind/connect") + ("" if abi < 6 else ", no signals out")
    return f"on: Landlock ABI {abi}, {added} rules{extra}"


# syscall numbers: (x86_64, aarch64); None where the call does not exist on that arch
_DENY = {
    "execve": (59, 221), "execveat": (322, 281), "fork": (57, None), "vfork": (58, None),
    "socket": (41, 198), "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "pidfd_getfd": (438, 438), "pidfd_send_signal": (424, 424), "kcmp": (312, 272), "mount": (165, 40),
    "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51), "unshare": (272, 97), "setns": (308, 268),
    "open_tree": (428, 428), "move_mount": (429, 429), "fsopen": (430, 430), "fsconfig": (431, 431),
    "fsmount": (432, 432), "fspick": (433, 433), "mount_setattr": (442, 442), "bpf": (321, 280),
    "perf_event_open": (298, 241), "userfaultfd": (323, 282), "init_module": (175, 105),
    "finit_module": (313, 273), "delete_module": (176, 106), "kexec_load": (246, 104),
    "kexec_file_load": (320, 294), "reboot": (169, 142), "swapon": (167, 224), "swapoff": (168, 225),
    "acct": (163, 89), "iopl": (172, None), "ioperm": (173, None), "add_key": (248, 217),
    "request_key": (249, 218), "keyctl": (250, 219), "io_uring_setup": (425, 425), "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427), "open_by_handle_at": (304, 265), "chmod": (90, None), "fchmod": (91, 52),
    "fchmodat": (268, 53), "fchmodat2": (452, 452), "chown": (92, None), "fchown": (93, 55), "lchown": (94, None),
    "fchownat": (260, 54), "setxattr": (188, 5), "lsetxattr": (189, 6), "fsetxattr": (190, 7),
    "removexattr": (197, 14), "lremovexattr": (198, 15), "fremovexattr": (199, 16), "setxattrat": (463, 463),
    "removexattrat": (466, 466), "settimeofday": (164, 170), "clock_settime": (227, 112), "adjtimex": (159, 171),
    "clock_adjtime": (305, 266), "sethostname": (170, 161), "setdomainname": (171, 162), "quotactl": (179, 60),
    "quotactl_fd": (443, 443), "fanotify_init": (300, 262), "mknod": (133, None), "mknodat": (259, 33),
    "tkill": (200, 130),
}
# allowed only when the first argument is this process (signals to itself, e.g. abort())
_SELF_ONLY = {"kill": (62, 129), "tgkill": (234, 131), "rt_sigqueueinfo": (129, 138),
              "rt_tgsigqueueinfo": (297, 240)}
_CLONE, _CLONE3, _RT_SIGACTION, _IOCTL, _SECCOMP = (56, 220), (435, 435), (13, 134), (16, 29), (317, 277)
_TIOCSTI, _TIOCLINUX = 0x5412, 0x541C  # push input into / control a terminal
_ARCHES = {"x86_64": (0, 0xC000003E), "amd64": (0, 0xC000003E), "aarch64": (1, 0xC00000B7), "arm64": (1, 0xC00000B7)}

_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _KILL_PROCESS, _RET_ERRNO = 0x7FFF0000, 0x80000000, 0x00050000


def _seccomp_program(arch_index: int, audit_arch: int, pid: int) -> list[tuple[int, int, int, int]]:
    """The BPF filter as (code, jt, jf, k) instructions; every branch returns within a few steps."""
    deny = _RET_ERRNO | _EPERM
    arg0, arg1_lo, arg1_hi = 16, 24, 28  # offsets in struct seccomp_data (little-endian)
    p = [(_LD_W_ABS, 0, 0, 4), (_JEQ, 1, 0, audit_arch), (_RET, 0, 0, _KILL_PROCESS),  # foreign ABI: kill
         (_LD_W_ABS, 0, 0, 0)]
    if arch_index == 0:
        p += [(_JGE, 0, 1, 0x40000000), (_RET, 0, 0, deny)]  # x32 calls
    for nums in _DENY.values():
        if nums[arch_index] is not None:
            p += [(_JEQ, 0, 1, nums[arch_index]), (_RET, 0, 0, deny)]
    p += [(_JEQ, 0, 1, _CLONE3[arch_index]), (_RET, 0, 0, _RET_ERRNO | _ENOSYS)]  # libc falls back to clone
    # clone: threads only (CLONE_THREAD set), never a new process
    p += [(_JEQ, 0, 4, _CLONE[arch_index]), (_LD_W_ABS, 0, 0, arg0), (_JSET, 0, 1, _CLONE_THREAD),
          (_RET, 0, 0, _ALLOW), (_RET, 0, 0, deny)]
    for nums in _SELF_ONLY.values():
        p += [(_JEQ, 0, 4, nums[arch_index]), (_LD_W_ABS, 0, 0, arg0), (_JEQ, 0, 1, pid),
              (_RET, 0, 0, _ALLOW), (_RET, 0, 0, deny)]
    # rt_sigaction: reading a disposition (act == NULL) is fine, installing a handler is not
    p += [(_JEQ, 0, 6, _RT_SIGACTION[arch_index]), (_LD_W_ABS, 0, 0, arg1_lo), (_JEQ, 0, 3, 0),
          (_LD_W_ABS, 0, 0, arg1_hi), (_JEQ, 0, 1, 0), (_RET, 0, 0, _ALLOW), (_RET, 0, 0, deny)]
    p += [(_JEQ, 0, 5, _IOCTL[arch_index]), (_LD_W_ABS, 0, 0, arg1_lo), (_JEQ, 1, 0, _TIOCSTI),
          (_JEQ, 0, 1, _TIOCLINUX), (_RET, 0, 0, deny), (_RET, 0, 0, _ALLOW)]
    p += [(_RET, 0, 0, _ALLOW)]
    return p


def deny_syscalls() -> str:
    """Install the seccomp filter on every thread of this process (TSYNC); it cannot be removed."""
    if not sys.platform.startswith("linux"):
        return f"off: seccomp needs Linux (this is {sys.platform})"
    arch = _ARCHES.get(platform.machine().lower())
    if arch is None:
        return f"off: no syscall table for {platform.machine()} here"
    class _Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint32)]

    class _Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Filter))]
    prog = _seccomp_program(arch[0], arch[1], os.getpid())
    arr = (_Filter * len(prog))(*[_Filter(*ins) for ins in prog])
    fprog = _Prog(len(prog), ctypes.cast(arr, ctypes.POINTER(_Filter)))
    try:
        libc = _libc()
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return _err("prctl(PR_SET_NO_NEW_PRIVS)")
        # SECCOMP_SET_MODE_FILTER = 1, SECCOMP_FILTER_FLAG_TSYNC = 1
        r = libc.syscall(_SECCOMP[arch[0]], ctypes.c_uint(1), ctypes.c_uint(1), ctypes.byref(fprog))
    except (OSError, AttributeError) as e:
        return f"off: {e}"
    if r != 0:
        return _err("seccomp(SET_MODE_FILTER)") if r < 0 else f"off: thread {r} could not be synchronised"
    return f"on: seccomp filter ({len(prog)} instructions)"
