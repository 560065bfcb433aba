"""Failure signatures: (exception type, message family, phase, raising library). No JAX.

A message family names what a message says, independent of the addresses, reprs and
shapes inside it, so two runs of one failure compare equal and a reworded upstream
message shows up as a different family.
"""

import re

# First match wins. Patterns are matched against the exception message. A family names one
# wording: when an upstream release rewords a message, the new wording gets a family of its
# own, so the change shows as a change of signature (the control-flow dtype errors below).
FAMILIES = (
    ("custom_node_mismatch", r"Custom node type mismatch"),
    ("expected_none", r"Expected None, got"),
    ("expected_container", r"Expected (tuple|list|dict), got None"),
    ("pytree_structure_error", r"pytree structure error"),
    # A None field meeting a traced value: a loss evaluated on a filtered module inside jit,
    # vmap or the line search ('NoneType' and 'DynamicJaxprTracer' / 'BatchTracer').
    ("none_operand_traced", r"unsupported operand type\(s\) for [^:]+: "
                            r"('NoneType' and '\w*Tracer'|'\w*Tracer' and 'NoneType')"),
    ("none_argument", r"got \(None,?\)"),
    ("operands_tree_structure", r"Operands must have the same tree structure"),
    ("tree_structure_mismatch", r"(Dict key mismatch|Tuple arity mismatch|List arity mismatch|"
                                r"tree structure|structure mismatch|Mismatch custom node)"),
    ("no_shape_attr", r"has no attribute 'shape'"),
    ("no_dtype_attr", r"has no attribute 'dtype'"),
    ("unsupported_operand", r"unsupported operand type"),
    ("none_not_callable", r"'NoneType' object is not callable"),
    ("missing_linesearch_args", r"missing \d+ required keyword-only argument"),
    ("bool_dtype", r"does not accept dtype bool"),
    ("key_dtype", r"does not accept dtype key"),
    ("not_valid_jax_type", r"is not a valid JAX type"),
    ("zeros_like_argument", r"zeros_like requires ndarray or scalar arguments"),
    ("dot_general_shapes", r"dot_general requires contracting dimensions to have the same shape"),
    ("inf_to_int", r"cannot convert float infinity to integer"),
    ("dropout_needs_key", r"requires a key when running in non-deterministic mode"),
    # The zoom line search's lax.cond / while_loop branches disagree on dtypes, in each
    # wording JAX has used: up to 0.4.38 / 0.4.31, then 0.5.1-0.5.3, then 0.6.0 on (cond), and
    # 0.4.33 on (while_loop).
    ("control_flow_dtypes", r"(true_fun and false_fun output|body_fun output and input) must have identical types"),
    ("cond_output_types", r"true_fun output and false_fun output must have identical types"),
    ("cond_branch_types", r"cond branches must have equal output types"),
    ("while_carry_types", r"while_loop body function carry input and carry output must have equal types"),
    ("empty_message", r"^\s*$"),
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
