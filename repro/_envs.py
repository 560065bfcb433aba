"""Build (and reuse) virtual environments with pinned JAX/Optax/Equinox. No JAX.

Shared by the noxfile, `repro bisect` and the benchmarks: one way to find an interpreter,
one way to build an env, one cache rule. uv is used where present (about 10x faster than
pip here). This machine sets PYTHONDONTWRITEBYTECODE, so a venv would re-compile every module
on every import; instead of compiling all of jax at install (`--compile-bytecode`, most of
the build time), each env gets a `.pth` hook that lets Python write bytecode as modules are
first imported: only what is used gets compiled, once;
virtualenv + pip is the fallback. Interpreters come from pyenv or PATH, never downloaded.
"""

import dataclasses
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_EXTRA = ("pytest>=7", "hypothesis>=6.100", "nox>=2024.4", "check-jsonschema>=0.28")
_STAMP = ".repro-env.json"


def uv_env():
    """Environment variables for uv: never download interpreters; keep its cache local."""
    return {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}


def find_interpreter(version):
    """Absolute path of a Python `version` ("3.12") from pyenv or PATH, or None."""
    roots = []
    try:
        roots.append(subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    roots.append(os.path.expanduser("~/.pyenv"))
    for root in roots:
        found = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", "python")),
                       key=lambda p: [int(x) for x in p.split(os.sep)[-3].split(".") if x.isdigit()])
        if found:
            return found[-1]
    for candidate in (f"python{version}",):
        path = shutil.which(candidate)
        if path and _runs(path, version):
            return path
    if sys.version.startswith(version + "."):
        return sys.executable
    return None


def _runs(path, version):
    try:
        out = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def have_uv():
    return shutil.which("uv") is not None


@dataclasses.dataclass
class EnvResult:
    ok: bool
    path: str
    python: str  # the env's interpreter
    seconds: float
    reused: bool
    reason: str = ""  # on failure: the installer's last words
    log: str = ""


def env_python(path):
    return os.path.join(path, "bin", "python")


def build_env(path, interpreter, requirements, *, backend=None, project=True, extras=TEST_EXTRA,
              exclude_newer=None, fresh=False, timeout=1800):
    """Create/refresh a venv at `path` with `requirements` (+ this project, editable).

    Reused as-is when its stamp says it was built from the same inputs. A failure (no
    interpreter, an unresolvable pin) returns ok=False with the resolver's message.
    """
    backend = backend or ("uv" if have_uv() else "virtualenv")
    reqs = list(requirements) + list(extras)
    key = hashlib.sha256(json.dumps([interpreter, reqs, backend, project, exclude_newer]).encode()).hexdigest()
    stamp = os.path.join(path, _STAMP)
    start = time.perf_counter()
    if not fresh and os.path.exists(stamp):
        with open(stamp) as f:
            if json.load(f).get("key") == key:
                return EnvResult(True, path, env_python(path), time.perf_counter() - start, True)
    if interpreter is None or not os.path.exists(interpreter):
        return EnvResult(False, path, "", 0.0, False, reason=f"interpreter not found: {interpreter}")
    shutil.rmtree(path, ignore_errors=True)
    install = reqs + (["-e", ROOT] if project else [])
    if backend == "uv":
        steps = [["uv", "venv", "-q", "--python", interpreter, path],
                 ["uv", "pip", "install", "-q", "--python", env_python(path), *install]
                 + (["--exclude-newer", exclude_newer] if exclude_newer else [])]
    else:
        steps = [[interpreter, "-m", "virtualenv", "-q", path] if _has_virtualenv(interpreter)
                 else [interpreter, "-m", "venv", path],
                 [env_python(path), "-m", "pip", "install", "-q", *install]]
    log = []
    for cmd in steps:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=uv_env(), timeout=timeout)
        except subprocess.TimeoutExpired:
            return EnvResult(False, path, "", time.perf_counter() - start, False,
                             reason=f"install timed out after {timeout} s", log="\n".join(log))
        log.append(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            return EnvResult(False, path, "", time.perf_counter() - start, False,
                             reason=_last_words(proc.stderr or proc.stdout), log="\n".join(log))
    _write_bytecode_lazily(path)
    with open(stamp, "w") as f:
        json.dump({"key": key, "requirements": reqs, "interpreter": interpreter, "backend": backend}, f)
    return EnvResult(True, path, env_python(path), time.perf_counter() - start, False, log="\n".join(log))


_PTH = "repro_write_bytecode.pth"


def _write_bytecode_lazily(path):
    """Drop a .pth hook so this env's Python writes .pyc files despite PYTHONDONTWRITEBYTECODE."""
    for site in glob.glob(os.path.join(path, "lib", "python*", "site-packages")):
        with open(os.path.join(site, _PTH), "w") as f:
            f.write("import sys; sys.dont_write_bytecode = False\n")


def _has_virtualenv(interpreter):
    return subprocess.run([interpreter, "-c", "import virtualenv"], capture_output=True).returncode == 0


def _last_words(text, limit=800):
    """The resolver's explanation: the meaningful tail of its output, in one string."""
    lines = [line.rstrip() for line in (text or "").strip().splitlines() if line.strip()]
    return "\n".join(lines[-12:])[-limit:]
