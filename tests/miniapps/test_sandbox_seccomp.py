"""The seccomp filter: the compiled program, run through a small classic-BPF interpreter for
both architectures, and loaded for real in a child process."""

from __future__ import annotations

import ctypes
import errno
import os
import struct

import pytest

from miniapps.host.sandbox import seccomp

ALLOW = seccomp.SECCOMP_RET_ALLOW
EPERM = seccomp.SECCOMP_RET_ERRNO | errno.EPERM
ENOSYS = seccomp.SECCOMP_RET_ERRNO | errno.ENOSYS
KILL = seccomp.SECCOMP_RET_KILL_PROCESS
CLONE_NEWUSER = 0x10000000
CLONE_THREAD_FLAGS = 0x3D0F00  # what glibc's pthread_create passes
SIGCHLD = 17


def run(program: bytes, nr: int, arch: int, args: tuple[int, ...] = ()) -> int:
    """Run a seccomp program on one ``struct seccomp_data`` and return its verdict."""
    padded = (tuple(args) + (0,) * 6)[:6]
    data = struct.pack("=iIQ6Q", nr, arch, 0, *padded)
    instructions = [struct.unpack_from("=HBBI", program, i) for i in range(0, len(program), 8)]
    accumulator = pc = 0
    while True:
        code, jt, jf, k = instructions[pc]
        pc += 1
        if code == seccomp.BPF_LD_W_ABS:
            accumulator = struct.unpack_from("=I", data, k)[0]
        elif code == seccomp.BPF_RET_K:
            return k
        else:
            taken = {
                seccomp.BPF_JEQ_K: accumulator == k,
                seccomp.BPF_JGE_K: accumulator >= k,
                seccomp.BPF_JSET_K: bool(accumulator & k),
            }[code]
            pc += jt if taken else jf


@pytest.mark.parametrize("arch", sorted(seccomp.ARCHES))
def test_program_verdicts(arch):
    program = seccomp.build_program(arch)
    spec = seccomp.ARCHES[arch]
    number = spec.numbers
    assert len(program) % 8 == 0 and len(program) // 8 < 256  # jumps fit in a byte

    def verdict(name_or_nr: str | int, *args: int) -> int:
        nr = number[name_or_nr] if isinstance(name_or_nr, str) else name_or_nr
        return run(program, nr, spec.audit, args)

    for name in seccomp.DENIED:
        assert verdict(name) == EPERM, name
    assert verdict("clone3") == ENOSYS  # glibc falls back to clone
    assert verdict("clone", SIGCHLD) == ALLOW  # fork
    assert verdict("clone", CLONE_THREAD_FLAGS) == ALLOW  # a thread
    assert verdict("clone", CLONE_NEWUSER | SIGCHLD) == EPERM
    assert verdict("clone", 0x40000000 | SIGCHLD) == EPERM  # CLONE_NEWNET
    assert verdict("clone", (1 << 32) | SIGCHLD) == ALLOW  # only the low 32 bits are flags
    for allowed in (0, 1, 3, 59, 60, 200, 231):  # read, write, close, execve, exit, …
        if allowed not in number.values():
            assert verdict(allowed) == ALLOW
    # Another architecture's calling convention is killed, not misread.
    assert run(program, 0, 0x40000003) == KILL  # i386 read()
    if spec.x32:
        assert verdict(0x40000000 + 272) == EPERM  # x32 unshare


def load_and_try(action) -> int:
    """Fork, load the filter in the child, run ``action`` there; its errno (0 = allowed)."""
    arch = seccomp.native_arch()
    if arch is None:
        pytest.skip("no seccomp filter for this architecture")
    loader = seccomp.Loader(seccomp.build_program(arch))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            loader.install()
            libc = ctypes.CDLL(None, use_errno=True)
            result = action(libc)
            os.write(write_end, str(0 if result == 0 else ctypes.get_errno()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    return int(answer)


def test_loaded_filter_denies_a_user_namespace_and_ptrace():
    assert load_and_try(lambda libc: libc.unshare(CLONE_NEWUSER)) == errno.EPERM
    assert load_and_try(lambda libc: libc.ptrace(16, os.getppid(), 0, 0)) == errno.EPERM
    # And the ordinary life of a Python process goes on under it: threads, fork, exec.
    assert load_and_try(lambda libc: os.system("true")) == 0
