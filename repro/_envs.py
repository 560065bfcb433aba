"""Build (and reuse) virtual environments with pinned JAX/Optax/Equinox. No JAX.

Shared by the matrix cells (repro._cells, the noxfile), `repro bisect` and the benchmarks:
one way to find an interpreter, one way to build an env, one reuse rule. Interpreters
come from pyenv or PATH, never downloaded (UV_PYTHON_DOWNLOADS=never).

With uv (much faster than pip: docs/performance.md): `uv venv` + `uv pip install`, using uv's own
download cache (uv's default location; nothing is set here). Without uv: `virtualenv`
when the interpreter has it, else the standard library's `venv`, then pip.

This harness goes into every env with the extras asked for (the test suite's dependencies
are the `test` extra in pyproject.toml, read by the installer itself), wherever it runs from
(`harness`): from a source checkout, the checkout, editable, so an edit is live in every env
and the suite's envs are not rebuilt for it; from an installed copy (uv tool, pipx, pip), that
copy re-packed as a wheel (repro._wheel), cached by its content. The stamp records what
would change it: the checkout's dependencies and extras, or the wheel's digest. The
envs are not byte-compiled at install: this machine sets PYTHONDONTWRITEBYTECODE, so a
`.pth` hook (`BYTECODE_HOOK`) lets the env's Python write `.pyc` files as modules are
first imported: only what is used gets compiled, once.

A requirement may name a source (`optax @ git+URL@REF`, `optax @ file:///checkout`: see
repro._versions.requirement). The env's stamp includes the source's state (a checkout's
HEAD, uncommitted diff and untracked files; the commit a git ref points at now), so a change
rebuilds the env. uv builds a local directory afresh on every install (measured, uv 0.13:
an edited file is picked up without --refresh, also offline); a git ref that is not a commit
sha (a branch) is refreshed (`--refresh-package`); a commit sha is built once and cached.

An env is reused as it is when its stamp says it was built from the same inputs: the
interpreter, the requirements (and the state of their sources), the harness (`harness_facts`),
the backend, the `--exclude-newer` date and the bytecode hook.
"""

import dataclasses
import glob
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

from . import _git, _paths, _wheel
from ._versions import DISTRIBUTION, TRACKED, source_pin

_STAMP = ".repro-env.json"
BYTECODE_HOOK = "import sys; sys.dont_write_bytecode = False\n"
_PTH = "repro_write_bytecode.pth"
# Can this env run the scenarios? The tracked packages import, JAX computes, repro's in-env code loads.
IMPORT_CHECK = (f"import {', '.join(TRACKED)}, jax.numpy as jnp; jnp.zeros(1).block_until_ready(); "
                "import repro._jax._run")


def uv_env():
    """Environment variables for the installers: never download an interpreter."""
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
        if path and _is_python(path, version):
            return path
    if sys.version.startswith(version + "."):
        return sys.executable
    return None


def _is_python(path, version):
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
    backend: str = ""  # uv, virtualenv or venv


def env_python(path):
    return os.path.join(path, "bin", "python")


def project_facts(extras):
    """What this project brings into an env from its checkout: its name, scripts, entry points
    (the pytest plugin), dependencies and the named extras, from pyproject.toml (the whole file
    where Python < 3.11 has no tomllib). An editable install writes its scripts and entry points
    only when installed."""
    pyproject = os.path.join(_paths.checkout(), "pyproject.toml")
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        with open(pyproject, encoding="utf-8") as f:
            return f.read()
    with open(pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [name for name in extras if name not in optional]
    if unknown:
        raise ValueError(f"no extra {unknown} in {pyproject}")
    return {"name": project.get("name"), "scripts": project.get("scripts", {}),
            "entry-points": project.get("entry-points", {}), "dependencies": project.get("dependencies", []), **{name: optional[name] for name in extras}}


def harness_facts(extras):
    """What an env's stamp records of this harness: from a checkout, `project_facts` (the code
    is installed editable: an edit needs no rebuild, a new dependency does); from an installed
    copy, the digest of the files its wheel is packed from (any change rebuilds the env)."""
    if _paths.checkout():
        return project_facts(extras)
    _, files = _wheel.installed_files()
    return {"wheel": _wheel.digest(files), "extras": list(extras)}


def harness(extras):
    """The installer arguments that put this harness, with `extras`, into an env: the checkout,
    editable; or the installed copy as a wheel, packed once into the cache's wheels/."""
    extra = f"[{','.join(extras)}]" if extras else ""
    root = _paths.checkout()
    if root:
        return ["-e", root + extra]
    path, _ = _wheel.harness_wheel(_paths.cache_path("wheels"))
    return [f"{DISTRIBUTION}{extra} @ {pathlib.Path(path).as_uri()}"]


def source_states(requirements):
    """{name: the state of its source now} for each requirement that names a source: a local
    directory's `_git.state_digest`, a git URL's current commit (`_git.remote_commit`)."""
    states = {}
    for name, spec in filter(None, map(source_pin, requirements)):
        states[name] = _git.state_digest(spec) if spec.startswith("/") else _git.remote_commit(spec)
    return states


def env_key(interpreter, requirements, *, backend, project, extras, exclude_newer):
    """The reuse stamp: a digest of everything an env is built from (the bytecode hook included)."""
    inputs = [interpreter, list(requirements), backend, project and harness_facts(extras), exclude_newer,
              BYTECODE_HOOK]
    states = source_states(requirements)
    if states:  # (absent otherwise: the envs built before source pins keep their stamps)
        inputs.append(states)
    return hashlib.sha256(json.dumps(inputs).encode()).hexdigest()


def _backend(interpreter, backend):
    if backend == "uv" or (backend is None and have_uv()):
        return "uv"
    return "virtualenv" if _has_virtualenv(interpreter) else "venv"


def build_env(path, interpreter, requirements, *, backend=None, project=True, extras=("test",),
              exclude_newer=None, fresh=False, timeout=1800):
    """Create/refresh a venv at `path` with `requirements` (+ this harness, with `extras`: see
    `harness`).

    `backend`: "uv", or "pip" (virtualenv if the interpreter has it, else venv; then pip);
    default uv when installed. Reused as-is when its stamp says it was built from the same
    inputs. A failure (no interpreter, an unresolvable pin) returns ok=False with the
    resolver's message.
    """
    if interpreter is None or not os.path.exists(interpreter):
        return EnvResult(False, path, "", 0.0, False, reason=f"interpreter not found: {interpreter}")
    backend = _backend(interpreter, backend)
    reqs = list(requirements)
    extras = list(extras) if project else []
    key = env_key(interpreter, reqs, backend=backend, project=project, extras=extras, exclude_newer=exclude_newer)
    stamp = os.path.join(path, _STAMP)
    start = time.perf_counter()
    if not fresh and os.path.exists(stamp):
        with open(stamp) as f:
            if json.load(f).get("key") == key:
                return EnvResult(True, path, env_python(path), time.perf_counter() - start, True, backend=backend)
    shutil.rmtree(path, ignore_errors=True)
    install = reqs + (harness(extras) if project else [])
    rebuilt = [arg for name, spec in filter(None, map(source_pin, reqs))
               if spec.startswith("git+") and not _git.pinned_commit(spec) for arg in ("--refresh-package", name)]
    if backend == "uv":
        steps = [["uv", "venv", "-q", "--python", interpreter, path],
                 ["uv", "pip", "install", "-q", "--python", env_python(path), *install, *rebuilt]
                 + (["--exclude-newer", exclude_newer] if exclude_newer else [])]
    else:
        steps = [[interpreter, "-m", backend, *(["-q"] if backend == "virtualenv" else []), path],
                 [env_python(path), "-m", "pip", "install", "-q", *install]]
    log = []
    for cmd in steps:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=uv_env(), timeout=timeout)
        except subprocess.TimeoutExpired:
            return EnvResult(False, path, "", time.perf_counter() - start, False,
                             reason=f"install timed out after {timeout} s", log="\n".join(log), backend=backend)
        log.append(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            return EnvResult(False, path, "", time.perf_counter() - start, False,
                             reason=_last_words(proc.stderr or proc.stdout), log="\n".join(log), backend=backend)
    _write_bytecode_lazily(path)
    with open(stamp, "w") as f:
        json.dump({"key": key, "requirements": reqs, "extras": extras, "interpreter": interpreter,
                   "backend": backend}, f)
    return EnvResult(True, path, env_python(path), time.perf_counter() - start, False, log="\n".join(log),
                     backend=backend)


def _write_bytecode_lazily(path):
    """Drop BYTECODE_HOOK as a .pth file so this env's Python writes .pyc files despite
    PYTHONDONTWRITEBYTECODE."""
    for site in glob.glob(os.path.join(path, "lib", "python*", "site-packages")):
        with open(os.path.join(site, _PTH), "w") as f:
            f.write(BYTECODE_HOOK)


def _has_virtualenv(interpreter):
    return subprocess.run([interpreter, "-c", "import virtualenv"], capture_output=True).returncode == 0


def import_error(python, timeout=300):
    """"" when `python` passes IMPORT_CHECK; else the last lines of what it printed."""
    try:
        proc = subprocess.run([python, "-c", IMPORT_CHECK], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"import check failed: {error}"
    if proc.returncode == 0:
        return ""
    lines = [line for line in (proc.stderr or proc.stdout).strip().splitlines() if line.strip()]
    return "\n".join(lines[-6:]) or f"import check exited with code {proc.returncode}"


def _last_words(text, limit=800):
    """The resolver's explanation: the meaningful tail of its output, in one string."""
    lines = [line.rstrip() for line in (text or "").strip().splitlines() if line.strip()]
    return "\n".join(lines[-12:])[-limit:]
