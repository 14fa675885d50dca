"""Child processes confined the way a user's machine confines them, without root tricks: a disk that fills up
(RLIMIT_FSIZE), file permissions that bind (a root child loses its permission override), closed standard streams.

`confined(argv, ...)` is `argv` behind a small launcher (a fresh Python that sets the confinement up and execs
`argv`), so the test process itself never forks with the JAX threads it may hold (no preexec_fn)."""
import sys

_LAUNCHER = """
import ctypes, os, resource, signal, sys
limit, bind, closed, *argv = sys.argv[1:]
if int(limit):  # every file may grow to `limit` bytes; a write past it fails with EFBIG (SIGXFSZ ignored)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), resource.RLIM_INFINITY))
if bind == "1" and os.geteuid() == 0:  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH leave the bounding set: exec keeps
    libc = ctypes.CDLL(None, use_errno=True)  # them out, so a read-only directory is read-only for root too
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
for fd in map(int, filter(None, closed.split(","))):
    os.close(fd)
os.execv(argv[0], argv)
"""


def confined(argv: list[str], *, file_size: int = 0, permissions_bind: bool = False,
             closed: tuple[int, ...] = ()) -> list[str]:
    """`argv` with its files limited to `file_size` bytes (0: no limit: a full disk), file permissions binding even
    for root, and the descriptors `closed` closed."""
    return [sys.executable, "-c", _LAUNCHER, str(file_size), "1" if permissions_bind else "0",
            ",".join(map(str, closed)), *argv]
