"""The environment probes: what a report's reproducer pins and its Environment section lists.
No JAX here.

Both run as `python -c` in the interpreter that runs the script (which need not have repro
installed) and print one `ENV-JSON {...}` line. `probe_versions` reads python's version and
the packages repro reports (repro._versions.PACKAGES, passed as arguments) with the commit of
any built from a source, without importing them: it is quick, and it runs first, because the
script's PEP 723 block pins exactly these versions before the script runs. The versions are
read by repro/_versions.py itself, run as a file (it needs only the standard library), so a
report and a cell record read them the same way. The full probe (`start_probe`,
`finish_probe`) runs beside the script: it adds the platform, JAX's backend and devices, and
the text of `jax.print_environment_info()`.
"""

import json
import subprocess
import sys

from .. import _versions
from .._versions import PACKAGES

_VERSIONS = r"""
import json, platform, runpy, sys
read = runpy.run_path(sys.argv[1])["installed_versions"]
env = {k: v for k, v in read(tuple(sys.argv[2:])).items() if k != "platform"}
env.update({"implementation": platform.python_implementation(), "platform": platform.platform(),
            "executable": sys.executable})
"""

_DEVICES = r"""
try:
    import jax
    env["backend"] = jax.default_backend()
    env["devices"] = [str(d) for d in jax.devices()]
    env["jax_environment_info"] = jax.print_environment_info(return_string=True)
except Exception as error:
    env["devices"] = ["unavailable: %s" % error]
"""

_PRINT = 'print("ENV-JSON " + json.dumps(env))\n'


def _start(code, python):
    return subprocess.Popen([python or sys.executable, "-c", code, _versions.__file__, *PACKAGES], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def start_probe(python=None):
    """Start the full probe in `python` (default: this interpreter); `finish_probe` collects it."""
    return _start(_VERSIONS + _DEVICES + _PRINT, python)


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


def probe_versions(python=None, timeout=120):
    """python's version and the reported packages' versions in `python`, from metadata only."""
    return finish_probe(_start(_VERSIONS + _PRINT, python), timeout=timeout)
