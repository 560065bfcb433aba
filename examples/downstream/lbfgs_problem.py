"""The problem file the reusable workflow runs through the harness's matrix cells
(`lbfgs-equinox-repro run --problem lbfgs_problem.py` here): `model` and `loss`."""

from tinymodels import make_problem

model, loss = make_problem()
