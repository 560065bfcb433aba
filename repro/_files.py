"""Atomic file writes: a reader never sees a half-written result. Imports nothing from repro."""

import datetime
import json
import os
import tempfile


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once, at import: os.umask is process-wide, not safe to flip in threads


def write_text_atomic(path, text):
    """Write so a reader never sees a half-written file (temp file + rename); the file gets the
    permissions an ordinary write would give it (mkstemp's are owner-only)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path, data):
    """`write_text_atomic` for bytes (a wheel)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(path, data):
    write_text_atomic(path, json.dumps(data, indent=2, default=str))


def utc_now():
    """Now, in UTC, to the second (ISO 8601): the one timestamp every file this tool writes uses."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
