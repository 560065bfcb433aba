"""What the children's environments get: a persistent XLA compilation cache (where it is safe),
fast-compile XLA flags, how many workers and how much memory each may hold. No JAX.

Facts as data: the jaxlib releases whose compilation cache computed wrong results
(CACHE_UNSAFE_JAXLIB) and the fast-compile flags (FAST_COMPILE_FLAGS) are tables.
"""

import glob
import os
import re
import sys

from ._settings import enabled, setting


# jaxlib releases whose persistent compilation cache made compiled programs compute wrong
# results here ([first bad, first good) ranges), found by the survey under jit on CPU: with the
# cache, `partition_fix` on a module of float arrays only departs from the flat-vector reference
# at iteration 1 and other working patterns stop converging (with one worker or two, with or
# without FAST_COMPILE_FLAGS); without it every working pattern agrees. jaxlib 0.5.0 and 0.6.1
# onwards do not show it. The measurement: docs/property-tests.md and docs/survey-findings.md.
CACHE_UNSAFE_JAXLIB = (("0.5.1", "0.6.1"),)


def _version_tuple(version):
    """(0, 5, 1) for "0.5.1": standard library only, because the scenario child imports this
    module, and an env must be able to report "No module named jax" without `packaging`."""
    return tuple(int(part) for part in version.split(".")[:3] if part.isdigit())


def compilation_cache_safe(jaxlib_version):
    """Whether a jaxlib's persistent compilation cache can be trusted (CACHE_UNSAFE_JAXLIB)."""
    if not jaxlib_version:
        return True
    version = _version_tuple(jaxlib_version)
    return not any(_version_tuple(lo) <= version < _version_tuple(hi) for lo, hi in CACHE_UNSAFE_JAXLIB)


def _env_jaxlib(env_dir):
    """The jaxlib version installed in the env at `env_dir` (from its dist-info), or None."""
    found = glob.glob(os.path.join(env_dir, "lib", "python*", "site-packages", "jaxlib-*.dist-info"))
    return os.path.basename(found[0])[len("jaxlib-"):-len(".dist-info")] if found else None


def jax_cache_env(python=None):
    """Env vars for a persistent XLA compilation cache inside `python`'s env (so a rebuilt env
    starts empty); {} if REPRO_JAX_CACHE=0, if JAX_COMPILATION_CACHE_DIR is already set, if
    the env is not writable, or if its jaxlib's cache gave wrong results (CACHE_UNSAFE_JAXLIB).

    Tracing, and so every error a scenario raises, still happens on each run; only compiled
    executables of identical programs are reused.
    """
    if not enabled("REPRO_JAX_CACHE") or "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return {}
    env_dir = os.path.dirname(os.path.dirname(os.path.abspath(python or sys.executable)))
    if not os.access(env_dir, os.W_OK) or not compilation_cache_safe(_env_jaxlib(env_dir)):
        return {}
    return {"JAX_COMPILATION_CACHE_DIR": os.path.join(env_dir, ".jax-cache"),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


# XLA CPU flags that make compiling faster without changing what a program computes, most
# preferred first. XLA aborts on a flag it does not know and names it, so a worker that fails
# to start retries without the flags named (`_without_unknown`), else with the next set.
# Every verdict (outcome signature, iterations) is the same with and without them; final losses
# differ only in rounding. --xla_cpu_parallel_codegen_split_count=1 compiles each program as one
# LLVM module instead of splitting it for threads that two busy cores cannot run anyway. What
# each XLA takes (the survey's cells record it): jax 0.4.30-0.5.0 only the optimisation level,
# 0.5.1-0.5.2 and 0.11.1 onwards that and the split count, 0.5.3-0.11.0 all three. What they
# save: docs/performance.md.
FAST_COMPILE_FLAGS = (
    "--xla_cpu_use_fusion_emitters=false --xla_backend_optimization_level=0 --xla_cpu_parallel_codegen_split_count=1",
    "--xla_backend_optimization_level=0",
    "",
)


def _without_unknown(flags, output):
    """`flags` without those XLA's abort message in `output` names as unknown ("Unknown flags
    in XLA_FLAGS: --a=1 --b=2"), or None if it names none of them."""
    match = re.search(r"Unknown flags? in XLA_FLAGS:\s*(.*)", output)
    if not match:
        return None
    unknown = {flag.split("=", 1)[0] for flag in match.group(1).split()}
    kept = [flag for flag in flags.split() if flag.split("=", 1)[0] not in unknown]
    return " ".join(kept) if len(kept) < len(flags.split()) else None


def fast_compile_candidates(env=None):
    """XLA_FLAGS values for a worker to try in order: FAST_COMPILE_FLAGS, or only the
    caller's own XLA_FLAGS if set, or only "" if REPRO_FAST_COMPILE=0."""
    merged = {**os.environ, **(env or {})}
    if "XLA_FLAGS" in merged:
        return (merged["XLA_FLAGS"],)
    if not enabled("REPRO_FAST_COMPILE", merged):
        return ("",)
    return FAST_COMPILE_FLAGS


def default_workers():
    """REPRO_WORKERS, else one worker per core."""
    value = setting("REPRO_WORKERS")
    return int(value) if value.isdigit() and int(value) > 0 else (os.cpu_count() or 1)


def resident_bytes(pid):
    """Resident memory of process `pid` in bytes (Linux /proc), or None where unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def default_max_rss(count):
    """REPRO_WORKER_MAX_RSS_MB, else a third of this machine's memory shared by `count` workers
    (capped at 4 GiB: measured, a worker that has compiled a few hundred module structures
    holds several GiB, and a fresh one costs only the JAX import)."""
    value = setting("REPRO_WORKER_MAX_RSS_MB")
    if value.isdigit() and int(value) > 0:
        return int(value) * 2**20
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 2**30
    return min(4 * 2**30, total // (3 * max(1, count)))
