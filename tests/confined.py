"""Child processes confined the way a user's machine confines them, without root tricks: a disk that fills up
(RLIMIT_FSIZE) and file permissions that bind (a root child loses its permission override). Each is a
`preexec_fn` for subprocess."""
import ctypes
import os
import resource
import signal


def file_size_limit(limit: int):
    """The child's files may grow to `limit` bytes; a write past it fails (EFBIG, SIGXFSZ ignored): a full disk."""
    def limit_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    return limit_files


def bound_by_permissions() -> None:
    """File permissions bind the child even when it runs as root (CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH leave its
    bounding set, so exec does not give them back): a read-only directory is read-only."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for capability in (1, 2):
            if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")
