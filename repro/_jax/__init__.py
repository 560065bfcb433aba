"""Everything below this package imports JAX and runs inside a matrix environment.

Code outside `repro._jax` must not import JAX: it builds environments, bisects and
aggregates results on a host that need not have JAX at all.
"""
