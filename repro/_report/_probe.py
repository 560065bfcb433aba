"""The environment probe: what a report's Environment section lists. No JAX here.

It runs as `python -c` in the interpreter that runs the script (which need not have repro
installed), alongside the script, and prints one `ENV-JSON {...}` line: python, platform,
the packages repro reports (repro._versions.PACKAGES, passed as arguments) with the commit of
any built from a source, and JAX's devices. The versions are read by repro/_versions.py itself,
run as a file (it needs only the standard library), so a report and a cell record read them
the same way.
"""

import json
import subprocess
import sys

from .. import _versions
from .._versions import PACKAGES

_ENV_PROBE = r"""
import json, platform, runpy, sys
read = runpy.run_path(sys.argv[1])["installed_versions"]
env = {k: v for k, v in read(tuple(sys.argv[2:])).items() if k != "platform"}
env.update({"implementation": platform.python_implementation(), "platform": platform.platform(),
            "executable": sys.executable})
try:
    import jax
    env["backend"] = jax.default_backend()
    env["devices"] = [str(d) for d in jax.devices()]
except Exception as error:
    env["devices"] = ["unavailable: %s" % error]
print("ENV-JSON " + json.dumps(env))
"""


def start_probe(python=None):
    """Start the probe in `python` (default: this interpreter); `finish_probe` collects it."""
    return subprocess.Popen([python or sys.executable, "-c", _ENV_PROBE, _versions.__file__, *PACKAGES],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_probe(proc, timeout=300):
    """The probe's dict; RuntimeError if it failed or timed out."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError("environment probe timed out") from None
    for line in stdout.splitlines():
        if line.startswith("ENV-JSON "):
            return json.loads(line[len("ENV-JSON "):])
    raise RuntimeError(f"environment probe failed: {(stderr or stdout).strip()[-500:]}")
