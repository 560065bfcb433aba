"""L-BFGS on this project's model, checked with lbfgs-equinox-repro's pytest plugin.

`@pytest.mark.lbfgs(uses=[...])` names the call patterns the project relies on: the check runs
only those, and fails the test unless each works (matches L-BFGS on the flat vector of the
model's float arrays) with the JAX/Optax/Equinox installed.
"""

import pytest

from tinymodels import fit, make_problem


@pytest.mark.lbfgs(uses=["partition_fix"], modes=["jit"])
def test_the_pattern_fit_uses_works(lbfgs_check):
    model, loss = make_problem()
    lbfgs_check(model, loss)
    assert loss(fit(model, loss)) < loss(model)


# This one FAILS, on purpose: it shows what a project relying on a broken pattern sees. The
# workaround shared in the upstream threads (filter the module with eqx.is_array, then call
# optax.lbfgs() with its defaults) does not work: the failure lists the verdict table.
@pytest.mark.lbfgs(uses=["seed_fix"], modes=["jit"])
def test_the_shared_workaround_works(lbfgs_check):
    lbfgs_check(*make_problem())
