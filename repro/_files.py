"""Atomic file writes: a reader never sees a half-written result. Imports nothing from repro."""

import json
import os
import tempfile


def write_text_atomic(path, text):
    """Write so a reader never sees a half-written file (temp file + rename)."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json_atomic(path, data):
    write_text_atomic(path, json.dumps(data, indent=2, default=str))
