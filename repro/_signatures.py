"""Failure signatures: (exception type, message family, phase, raising library). No JAX.

A message family names what a message says, independent of the addresses, reprs and
shapes inside it, so two runs of one failure compare equal and a reworded upstream
message shows up as a different family.
"""

import re

# First match wins. Patterns are matched against the exception message.
FAMILIES = (
    ("custom_node_mismatch", r"Custom node type mismatch"),
    ("expected_none", r"Expected None, got"),
    ("expected_container", r"Expected (tuple|list|dict), got None"),
    ("pytree_structure_error", r"pytree structure error"),
    ("tree_structure_mismatch", r"(Dict key mismatch|Tuple arity mismatch|List arity mismatch|"
                                r"tree structure|structure mismatch|Mismatch custom node)"),
    ("no_shape_attr", r"has no attribute 'shape'"),
    ("no_dtype_attr", r"has no attribute 'dtype'"),
    ("unsupported_operand", r"unsupported operand type"),
    ("none_not_callable", r"'NoneType' object is not callable"),
    ("missing_linesearch_args", r"missing \d+ required keyword-only argument"),
    ("bool_dtype", r"does not accept dtype bool"),
    ("not_valid_jax_type", r"is not a valid JAX type"),
    ("dot_general_shapes", r"dot_general requires contracting dimensions to have the same shape"),
    ("inf_to_int", r"cannot convert float infinity to integer"),
    ("control_flow_dtypes", r"(true_fun and false_fun output|body_fun output and input) must have identical types"),
    ("not_converged", r"^did not converge"),
)

LIBRARIES = ("equinox", "optax", "jaxlib", "jax")


def message_family(message):
    for family, pattern in FAMILIES:
        if re.search(pattern, message or ""):
            return family
    return "other"


def library_of(filename):
    """The library a source file belongs to, or None for user/stdlib code."""
    parts = re.split(r"[\\/]", filename or "")
    for lib in LIBRARIES:
        if lib in parts:
            return lib
    return None


def raising_library(filenames):
    """The library of the deepest frame that belongs to jax/jaxlib/optax/equinox."""
    for filename in reversed(list(filenames)):
        lib = library_of(filename)
        if lib:
            return "jax" if lib == "jaxlib" else lib
    return "user"


def refine_phase(phase, filenames):
    """An update that failed inside Optax's line search is reported as phase `linesearch`."""
    if phase == "update" and any(re.search(r"optax[\\/].*linesearch", f or "") for f in filenames):
        return "linesearch"
    return phase
