"""The environment probe: what a report's Environment section lists. No JAX here.

It runs as `python -c` in the interpreter that runs the script (which need not have repro
installed), alongside the script, and prints one `ENV-JSON {...}` line: python, platform,
the packages repro reports (repro._versions.PACKAGES, passed as arguments) and JAX's devices.
"""

import json
import subprocess
import sys

from .._versions import PACKAGES

_ENV_PROBE = r"""
import json, platform, sys
from importlib import metadata
env = {"python": platform.python_version(), "implementation": platform.python_implementation(),
       "platform": platform.platform(), "executable": sys.executable}
for name in sys.argv[1:]:
    try:
        env[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        env[name] = None
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
    return subprocess.Popen([python or sys.executable, "-c", _ENV_PROBE, *PACKAGES], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


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
