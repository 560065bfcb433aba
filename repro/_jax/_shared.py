"""Reference records shared between the long-lived workers of one pool (`repro._workers.Workers`).

Every working call pattern of a module is judged against the same flat-vector reference
(`_run.reference_for`), and compiling that reference's zoom line search is most of what the
oracle costs. Two workers judging scenarios of the same module would each compile it: the
pool hands them a directory (REPRO_REFERENCE_STORE) where the first to compute a record
leaves it, `<key>.npz`, written atomically. While one worker computes, it holds `<key>.lock`
(its pid inside); another that needs the record waits for it instead of compiling it again,
and computes it itself only if the holder died. A record is the same computation, in the same
env with the same XLA flags, as the waiting worker would have made.

NumPy and the standard library only: a record is losses, iterates and an error line.
"""

import os
import time

import numpy as np

from .._protocol import REFERENCE_STORE_ENV as STORE_ENV
from .._settings import setting


def store():
    """The pool's directory, or None outside a pool (every process computes its own)."""
    path = setting(STORE_ENV)
    return path if path and os.path.isdir(path) else None


def _paths(directory, key):
    return os.path.join(directory, f"{key}.npz"), os.path.join(directory, f"{key}.lock")


def load(directory, key):
    """The stored record {"losses", "iterates", "error"}, or None."""
    path, _ = _paths(directory, key)
    try:
        with np.load(path, allow_pickle=False) as data:
            error = str(data["error"]) or None
            return {"losses": [float(v) for v in data["losses"]],
                    "iterates": [np.asarray(x, np.float64) for x in data["iterates"]], "error": error}
    except (OSError, KeyError, ValueError):
        return None


def save(directory, key, record):
    """Write `record` atomically (a reader sees all of it or nothing)."""
    path, _ = _paths(directory, key)
    iterates = np.stack(record["iterates"]) if record["iterates"] else np.zeros((0, 0))
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    np.savez(tmp, losses=np.asarray(record["losses"], np.float64), iterates=iterates,
             error=np.asarray(record["error"] or ""))
    os.replace(tmp, path)


def claim(directory, key):
    """True if this process now holds `key` (it must `release` it); False if another does."""
    _, lock = _paths(directory, key)
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    return True


def release(directory, key):
    _, lock = _paths(directory, key)
    try:
        os.unlink(lock)
    except FileNotFoundError:
        pass


def _holder_alive(lock):
    try:
        with open(lock) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return False  # released
    except OSError:
        return True
    if not text.isdigit():
        return True  # created, its pid not written yet
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def wait(directory, key, *, poll=0.02, limit=600.0):
    """Wait while another live process holds `key`; True if it was released (look again)."""
    _, lock = _paths(directory, key)
    deadline = time.monotonic() + limit
    while os.path.exists(lock):
        if not _holder_alive(lock) and os.path.exists(lock):
            # a dead holder: take its lock away so that someone computes the record
            try:
                os.unlink(lock)
            except FileNotFoundError:
                pass
            return False
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True
