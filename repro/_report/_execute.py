"""Run a standalone script as-is, in a fresh process in a temporary directory. No JAX here."""

import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from typing import Optional

from ._extract import SCRIPT_NAME


@dataclasses.dataclass
class Run:
    returncode: Optional[int]  # None: timed out
    output: str  # stdout + stderr, as printed
    seconds: float


def run_script(script_text, *, python=None, timeout=300, workdir=None):
    """Write the script to a fresh directory and run it there with `python` (default: this one)."""
    with tempfile.TemporaryDirectory(prefix="repro-report-", dir=workdir) as folder:
        path = os.path.join(folder, SCRIPT_NAME)
        with open(path, "w", encoding="utf-8") as f:
            f.write(script_text)
        start = time.perf_counter()
        try:
            proc = subprocess.run([python or sys.executable, path], capture_output=True, text=True,
                                  timeout=timeout, cwd=folder)
        except subprocess.TimeoutExpired as error:
            out = (error.stdout or b"") + (error.stderr or b"")
            text = out.decode(errors="replace") if isinstance(out, bytes) else out
            return Run(None, text, round(time.perf_counter() - start, 3))
        # stderr after stdout: the traceback comes last, as in a terminal where it was raised.
        return Run(proc.returncode, proc.stdout + proc.stderr, round(time.perf_counter() - start, 3))
