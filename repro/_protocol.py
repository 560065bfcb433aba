"""The line protocol between the host and the JAX children (`python -m repro._jax._child`). No JAX.

Shared by both sides, so it lives apart from the runners and the pool: a child prints each
Outcome as JSON behind RESULT_MARKER as soon as it has it; a Workers job whose scenario is
REFERENCE_JOB + NAME computes the reference record scenario NAME is judged against and leaves
it in the pool's store (REFERENCE_STORE_ENV, a directory) for the workers that judge the case's
other scenarios (repro._jax._shared).
"""

import json

RESULT_MARKER = "@@repro-outcome@@"
REFERENCE_JOB = "_reference:"
REFERENCE_STORE_ENV = "REPRO_REFERENCE_STORE"
OUTPUT_TAIL = 4000


def parse_result(line):
    if line.startswith(RESULT_MARKER):
        return json.loads(line[len(RESULT_MARKER):])
    return None
