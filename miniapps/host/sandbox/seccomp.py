"""A seccomp filter for hosted apps, compiled to classic BPF here (no libseccomp needed).

The app gets ``EPERM`` for the calls that reach the kernel's attack surface or other processes
and that no mini-program needs: namespaces (``unshare``, ``setns``, ``clone`` with a
``CLONE_NEW*`` flag), mounts, ``ptrace`` and ``process_vm_*``, the keyring, ``bpf``,
``perf_event_open``, ``userfaultfd``, kernel modules, kexec, reboot, swap, accounting and quotas.
``clone3`` gets ``ENOSYS``: its flags live in memory a filter cannot read, and on ENOSYS glibc
falls back to ``clone``, whose flags it can. A call made with another architecture's
convention (a 32-bit ``int 0x80``, the x32 ABI) would bypass the number checks: it kills the
process (other arch) or gets ``EPERM`` (x32). Everything else is allowed.

bubblewrap loads the program with ``--seccomp FD``; without bubblewrap the host's preexec loads
it with ``prctl`` (``install``).
"""

from __future__ import annotations

import ctypes
import os
import platform
import struct
from dataclasses import dataclass

# Classic BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_JSET_K = 0x45
BPF_RET_K = 0x06
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
EPERM = 1
ENOSYS = 38

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little-endian,
# so the low 32 bits of args[0] are at offset 16).
OFFSET_NR = 0
OFFSET_ARCH = 4
OFFSET_ARG0_LOW = 16

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000

# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET. Not CLONE_NEWTIME
# (0x80): for clone() the low byte is the exit signal, and NEWTIME only exists for clone3.
CLONE_NEW_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000
CLONE_NEW_FLAGS |= 0x20000000 | 0x40000000

# Each gets EPERM. The names are those of the ``ARCHES`` tables below.
DENIED = (
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree", "move_mount",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "ptrace", "process_vm_readv",
    "process_vm_writev", "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
    "userfaultfd", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "open_by_handle_at", "reboot", "swapon", "swapoff", "acct", "quotactl",
    "quotactl_fd",
)  # fmt: skip


@dataclass(frozen=True)
class Arch:
    """One architecture's audit value and the syscall numbers the filter names."""

    audit: int
    numbers: dict[str, int]
    x32: bool  # whether the x32 ABI shares this audit value (x86_64 only)


ARCHES = {
    "x86_64": Arch(
        AUDIT_ARCH_X86_64,
        {
            "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155,
            "chroot": 161, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
            "fsmount": 432, "fspick": 433, "mount_setattr": 442, "ptrace": 101,
            "process_vm_readv": 310, "process_vm_writev": 311, "keyctl": 250, "add_key": 248,
            "request_key": 249, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323,
            "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
            "delete_module": 176, "open_by_handle_at": 304, "reboot": 169, "swapon": 167,
            "swapoff": 168, "acct": 163, "quotactl": 179, "quotactl_fd": 443,
            "clone": 56, "clone3": 435,
        },
        x32=True,
    ),
    "aarch64": Arch(
        AUDIT_ARCH_AARCH64,
        {
            "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41,
            "chroot": 51, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
            "fsmount": 432, "fspick": 433, "mount_setattr": 442, "ptrace": 117,
            "process_vm_readv": 270, "process_vm_writev": 271, "keyctl": 219, "add_key": 217,
            "request_key": 218, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282,
            "kexec_load": 104, "kexec_file_load": 294, "init_module": 105, "finit_module": 273,
            "delete_module": 106, "open_by_handle_at": 265, "reboot": 142, "swapon": 224,
            "swapoff": 225, "acct": 89, "quotactl": 60, "quotactl_fd": 443,
            "clone": 220, "clone3": 435,
        },
        x32=False,
    ),
}  # fmt: skip


def native_arch() -> str | None:
    """This machine's architecture if the filter knows it, else None (no filter)."""
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return machine if machine in ARCHES else None


def build_program(arch: str) -> bytes:
    """The filter for ``arch`` as an array of ``struct sock_filter`` (what ``--seccomp`` and
    ``SECCOMP_SET_MODE_FILTER`` take)."""
    spec = ARCHES[arch]
    # (code, jump-if-true label, jump-if-false label, k); a label None means "next".
    code: list[tuple[int, str | None, str | None, int]] = [
        (BPF_LD_W_ABS, None, None, OFFSET_ARCH),
        (BPF_JEQ_K, None, "kill", spec.audit),
        (BPF_LD_W_ABS, None, None, OFFSET_NR),
    ]
    if spec.x32:
        code.append((BPF_JGE_K, "eperm", None, X32_SYSCALL_BIT))
    for name in DENIED:
        code.append((BPF_JEQ_K, "eperm", None, spec.numbers[name]))
    code += [
        (BPF_JEQ_K, "enosys", None, spec.numbers["clone3"]),
        (BPF_JEQ_K, None, "allow", spec.numbers["clone"]),
        (BPF_LD_W_ABS, None, None, OFFSET_ARG0_LOW),
        (BPF_JSET_K, "eperm", "allow", CLONE_NEW_FLAGS),
    ]
    returns = {
        "allow": SECCOMP_RET_ALLOW,
        "eperm": SECCOMP_RET_ERRNO | EPERM,
        "enosys": SECCOMP_RET_ERRNO | ENOSYS,
        "kill": SECCOMP_RET_KILL_PROCESS,
    }
    labels = {name: len(code) + index for index, name in enumerate(returns)}
    program = bytearray()
    for index, (opcode, if_true, if_false, k) in enumerate(code):
        # Jumps are relative to the next instruction and only go forward.
        jt = labels[if_true] - index - 1 if if_true else 0
        jf = labels[if_false] - index - 1 if if_false else 0
        program += struct.pack("=HBBI", opcode, jt, jf, k)
    for value in returns.values():
        program += struct.pack("=HBBI", BPF_RET_K, 0, 0, value)
    return bytes(program)


def program_fd(program: bytes) -> int:
    """A readable fd holding ``program`` (for ``bwrap --seccomp``); the caller closes it."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, program)  # a few hundred bytes: fits the pipe's buffer
    finally:
        os.close(write_end)
    return read_end


_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class Loader:
    """Installs a program in the calling process. Built in the parent so the child, between
    fork and exec, only makes two ``prctl`` calls (no allocation, no import)."""

    def __init__(self, program: bytes) -> None:
        self._buffer = ctypes.create_string_buffer(program, len(program))
        self._fprog = _SockFprog(len(program) // 8, ctypes.addressof(self._buffer))
        self._libc = ctypes.CDLL(None, use_errno=True)

    def install(self) -> None:
        """NO_NEW_PRIVS (required to load a filter without CAP_SYS_ADMIN, and a good idea
        anyway), then the filter; ``OSError`` if the kernel refuses."""
        prctl = self._libc.prctl
        # Full-width arguments: the kernel rejects NO_NEW_PRIVS unless args 3-5 are exactly 0.
        zero = ctypes.c_ulong(0)
        if prctl(_PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), zero, zero, zero) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        mode = ctypes.c_ulong(_SECCOMP_MODE_FILTER)
        if prctl(_PR_SET_SECCOMP, mode, ctypes.byref(self._fprog), zero, zero) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
