"""The daemon's stack runs with writable+executable memory denied.

The unit sets ``MemoryDenyWriteExecute=yes``. systemd implements it as a
seccomp filter that refuses mmap() with PROT_WRITE|PROT_EXEC, mprotect() and
pkey_mprotect() with PROT_EXEC, and shmat() with SHM_EXEC. A child process
installs that same filter (raw classic BPF through prctl, no libseccomp),
proves it bites, then does what the daemon does: import numpy, OpenCV and
LiteRT, load the shipped bundle, run its golden self-test on two interpreter
threads (XNNPACK), detect faces with the Haar cascade and encode a JPEG
snapshot. A JIT anywhere in that stack would fail here, not on the Pi.
"""

import platform
import subprocess
import sys
import textwrap

import pytest

# (AUDIT_ARCH, mmap, mprotect, pkey_mprotect, shmat) per machine.
ARCHES = {
    "x86_64": (0xC000003E, 9, 10, 329, 30),
    "aarch64": (0xC00000B7, 222, 226, 288, 196),
}

CHILD = textwrap.dedent(r"""
    import ctypes, errno, mmap, struct, sys

    ARCH, NR_MMAP, NR_MPROTECT, NR_PKEY_MPROTECT, NR_SHMAT = map(int, sys.argv[1:6])
    PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
    LD_W_ABS, JEQ, JSET, AND, RET = 0x20, 0x15, 0x45, 0x54, 0x06
    ALLOW, DENY = 0x7FFF0000, 0x00050000 | errno.EPERM
    ARG2 = 16 + 8 * 2  # seccomp_data.args[2], low 32 bits (little endian)

    # (code, jump-if-true label, jump-if-false label, k); labels resolved below.
    prog = [
        ("arch", LD_W_ABS, None, None, 4),
        (None, JEQ, None, "allow", ARCH),
        (None, LD_W_ABS, None, None, 0),
        (None, JEQ, "mmap", None, NR_MMAP),
        (None, JEQ, "exec", None, NR_MPROTECT),
        (None, JEQ, "exec", None, NR_PKEY_MPROTECT),
        (None, JEQ, "shm", "allow", NR_SHMAT),
        ("mmap", LD_W_ABS, None, None, ARG2),
        (None, AND, None, None, PROT_WRITE | PROT_EXEC),
        (None, JEQ, "deny", "allow", PROT_WRITE | PROT_EXEC),
        ("exec", LD_W_ABS, None, None, ARG2),
        (None, JSET, "deny", "allow", PROT_EXEC),
        ("shm", LD_W_ABS, None, None, ARG2),
        (None, JSET, "deny", "allow", SHM_EXEC),
        ("deny", RET, None, None, DENY),
        ("allow", RET, None, None, ALLOW),
    ]
    where = {label: i for i, (label, *_rest) in enumerate(prog) if label}
    raw = b""
    for i, (_label, code, jt, jf, k) in enumerate(prog):
        off = lambda target: 0 if target is None else where[target] - i - 1
        raw += struct.pack("HBBI", code, off(jt), off(jf), k)
    buf = ctypes.create_string_buffer(raw)

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Fprog(len(prog), ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    assert libc.prctl(38, 1, None, 0, 0) == 0, "PR_SET_NO_NEW_PRIVS"
    if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, FILTER
        sys.exit(f"seccomp refused: errno {ctypes.get_errno()}")

    # The filter bites: W+X memory is refused.
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    except PermissionError:
        pass
    else:
        sys.exit("W+X mmap was allowed: the filter is not working")

    import numpy as np
    import cv2
    from happyhouse.daemon.bundle import load_bundle

    bundle = load_bundle()
    clf = bundle.classifier(threads=2)
    checked = bundle.self_test(clf)
    rng = np.random.default_rng(0)
    scores = clf.scores(rng.integers(0, 256, (4, *clf.input_size, 3), dtype=np.uint8))
    assert scores.shape == (4,) and np.all((scores >= 0) & (scores <= 1)), scores

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    assert not cascade.empty()
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    gray = cv2.equalizeHist(cv2.cvtColor(cv2.resize(frame, (320, 240)), cv2.COLOR_BGR2GRAY))
    cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
    ok, jpeg = cv2.imencode(".jpg", frame)
    assert ok and len(jpeg) > 100
    print(f"OK runtime={clf.runtime} golden={checked}")
""")


@pytest.mark.slow
def test_stack_runs_with_write_execute_memory_denied():
    arch = ARCHES.get(platform.machine())
    if arch is None:
        pytest.skip(f"no seccomp syscall table here for {platform.machine()}")
    proc = subprocess.run([sys.executable, "-c", CHILD, *map(str, arch)],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("OK runtime=ai_edge_litert"), proc.stdout
