"""Hypothesis strategies for Equinox modules of every leaf kind users have.

Every generated case is *source code* (a `Case`): a few lines that define `model`,
`loss` and `optimum` using only jax, equinox and functools. The harness builds the model
by executing that source, so a counterexample's reproducer is exactly what ran, and
shrinking heads to short source (fewer fields, smaller shapes, simpler leaves).

The loss has a known optimum, 0: a term per float array that is 0 at its optimum (a
quadratic pulling it to 0.5, a badly scaled one, a double well, a Rosenbrock valley: see
LOSS_FORMS), or, for `eqx.nn` layers, a quadratic pulling to the layer's initial weights;
plus `0.0 *` a use of every other leaf the way a forward pass uses it (calls the
activation, multiplies by the Python float, sums the integer array...), and for steering
fields (a flag selecting a branch, an int used as a size, a Dropout inference switch) a
term that is 0 with the field's value and not 0, or an error, when the field is None. So
a scenario that hands L-BFGS's line search a filtered module trips over the missing leaf
exactly as user code would, or silently computes another function.
"""

import dataclasses

import hypothesis.strategies as st

PRELUDE = "import functools\n\nimport equinox as eqx\nimport jax\nimport jax.numpy as jnp\n"

CALLABLES = (
    "jax.nn.relu",  # a jax.custom_jvp function
    "jax.nn.tanh",
    "jax.nn.softplus",
    "(lambda x: x)",
    "functools.partial(jax.nn.leaky_relu, negative_slope=0.1)",
)


@dataclasses.dataclass(frozen=True)
class Case:
    """A generated module and loss, as standalone source defining model, loss, optimum."""

    source: str
    description: str
    kinds: frozenset  # leaf kinds present: float, int_array, bool_array, py_int, callable, ...

    def build(self):
        """Execute the source; return (model, loss, optimum)."""
        from ._run import build_case

        return build_case(self.source)

    def __repr__(self):  # what Hypothesis prints for a falsifying example
        return f"Case({self.description!r})"


@dataclasses.dataclass(frozen=True)
class Leaf:
    expr: str  # constructor expression
    kind: str
    use: str = ""  # loss term with {p} for the access path; "" = contributes nothing
    describe: str = ""


def _shape():
    return st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)


# float32 first: Hypothesis shrinks towards it. (float64 needs jax_enable_x64, off by default.)
FLOAT_DTYPES = ("float32", "float16", "bfloat16")


# How a float array enters the loss; every form is 0 at its optimum and > 0 elsewhere, and the
# first (a plain quadratic) is what Hypothesis shrinks to. `{p}` is the array, `{w}` a fixed
# array of its shape with weights from 1e-2 to 1e2.
LOSS_FORMS = (
    ("jnp.sum(({p} - 0.5) ** 2)", "quadratic"),
    # Badly scaled: curvatures four orders of magnitude apart.
    ("jnp.sum({w} * ({p} - 0.5) ** 2)", "badly scaled"),
    # Non-convex: two minima (0.5 and -0.25, both loss 0) and a maximum between them; no
    # start value (1.5, -1, 0, 2) is stationary.
    ("jnp.sum(({p} - 0.5) ** 2 * ({p} + 0.25) ** 2)", "double well"),
    # Non-convex and slow: a Rosenbrock valley along the array's entries (with its start).
    ("jnp.sum((1.0 - {p}) ** 2) + jnp.sum(10.0 * (jnp.ravel({p})[1:] - jnp.ravel({p})[:-1] ** 2) ** 2)",
     "Rosenbrock"),
)


@st.composite
def float_arrays(draw):
    shape = draw(_shape())
    start = draw(st.sampled_from([1.5, -1.0, 0.0, 2.0]))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    form, name = draw(st.sampled_from(LOSS_FORMS))
    size = 1
    for n in shape:
        size *= n
    weights = f"jnp.logspace(-2.0, 2.0, {size}).reshape({shape!r})"
    use = form.replace("{w}", weights)
    described = f"{dtype}{list(shape)}" + ("" if name == "quadratic" else f" {name}")
    return Leaf(f"jnp.full({shape!r}, {start!r}, jnp.{dtype})", "float" if dtype == "float32" else "low_precision",
                use, described)


def other_leaves():
    """Every non-float leaf kind, simplest first (Hypothesis shrinks towards the first)."""
    return st.one_of(
        st.just(Leaf("3", "py_int", "0.0 * {p}", "int")),
        st.just(Leaf("0.5", "py_float", "0.0 * {p}", "float")),
        st.just(Leaf("True", "py_bool", "0.0 * {p}", "bool")),
        st.just(Leaf("'relu'", "py_str", "0.0 * len({p})", "str")),
        st.just(Leaf("None", "none", "", "None")),
        st.sampled_from(CALLABLES).map(
            lambda f: Leaf(f, "callable", "0.0 * {p}(jnp.float32(0.3))", f"callable {f}")),
        st.integers(0, 3).map(int_array),
        st.integers(0, 3).map(bool_array),
        # A Python -inf (a mask's fill value, as real code keeps one) used the way code uses it.
        st.just(Leaf("float('-inf')", "py_float", "0.0 * jnp.maximum(jnp.float32(0.3), {p})", "float -inf")),
        # A class as a leaf (a dtype stored in the module).
        st.just(Leaf("jnp.float32", "class", "0.0 * jnp.asarray(0.3, {p})", "class jnp.float32")),
        # A typed PRNG key.
        st.just(Leaf("jax.random.key(0)", "key_array", "0.0 * jax.random.uniform({p})", "PRNG key")),
        steering_leaves(),
    )


def int_array(n):
    """An int32 array of n entries, or a scalar counter (n == 0): the shape decides how JAX 0.4.33
    and older misalign it (repro/_leaves.py)."""
    if n == 0:
        return Leaf("jnp.asarray(3, jnp.int32)", "int_array", "0.0 * {p}", "int32[]")
    return Leaf(f"jnp.arange({n}, dtype=jnp.int32)", "int_array", "0.0 * jnp.sum({p})", f"int32[{n}]")


def bool_array(n):
    """A bool array of n entries (a mask), or a scalar flag array (n == 0)."""
    if n == 0:
        return Leaf("jnp.asarray(True)", "bool_array", "0.0 * jnp.sum({p})", "bool[]")
    values = ", ".join(str(i % 2 == 0) for i in range(n))
    return Leaf(f"jnp.array([{values}])", "bool_array", "0.0 * jnp.sum({p})", f"bool[{n}]")


def steering_leaves():
    """Non-array fields that steer the loss rather than feed it: each term is 0 with the field's
    real value, and something else when the field is None (as a filtered module has it), so a
    call pattern that evaluates the loss on a filtered module computes another function."""
    return st.one_of(
        # A flag that selects a branch.
        st.just(Leaf("True", "steering", "(0.0 if {p} else 1.0)", "flag steering a branch")),
        # An int used as a size: [:None] is the whole array.
        st.just(Leaf("2", "steering", "(jnp.sum(jnp.arange(4.0)[:{p}]) - 1.0)", "int used as a size")),
        # An inference switch, as eqx.nn layers have: with None, Dropout wants a key.
        st.just(Leaf("eqx.nn.Dropout(0.5, inference=True)", "steering",
                     "jnp.sum({p}(jnp.zeros(2)))", "eqx.nn.Dropout(inference=True)")),
    )


@dataclasses.dataclass(frozen=True)
class Node:
    """A field value: a leaf, a container of nodes, or a nested module."""

    leaf: "Leaf | None" = None
    container: str = ""  # tuple | list | dict | module
    children: tuple = ()  # of (key, Node)
    static: bool = False


def leaf_nodes():
    return st.one_of(float_arrays(), other_leaves()).map(lambda leaf: Node(leaf=leaf))


def nodes():
    def extend(children):
        items = st.lists(children, min_size=1, max_size=3)
        return st.one_of(
            items.map(lambda xs: Node(container="tuple", children=tuple(enumerate(xs)))),
            items.map(lambda xs: Node(container="list", children=tuple(enumerate(xs)))),
            items.map(lambda xs: Node(container="dict", children=tuple((f"k{i}", x) for i, x in enumerate(xs)))),
            items.map(lambda xs: Node(container="module", children=tuple((f"f{i}", x) for i, x in enumerate(xs)))),
        )

    return st.recursive(leaf_nodes(), extend, max_leaves=6)


def static_nodes():
    """A field marked eqx.field(static=True): a Python value or a callable (never an array)."""
    return st.one_of(
        st.just(Leaf("4", "static", "0.0 * {p}", "static int")),
        st.just(Leaf("'tanh'", "static", "0.0 * len({p})", "static str")),
        st.sampled_from(CALLABLES).map(
            lambda f: Leaf(f, "static", "0.0 * {p}(jnp.float32(0.3))", f"static {f}")),
    ).map(lambda leaf: Node(leaf=leaf, static=True))


class _Writer:
    """Turns a Node tree into class definitions, a constructor expression and loss terms."""

    def __init__(self):
        self.classes, self.terms, self.kinds, self.parts = [], [], set(), []

    def expr(self, node, path):
        if node.leaf is not None:
            self.kinds.add(node.leaf.kind)
            self.parts.append(node.leaf.describe)
            if node.leaf.use:
                self.terms.append(node.leaf.use.format(p=path))
            return node.leaf.expr
        if node.container == "module":
            return self.module(node.children, path)
        self.kinds.add(node.container)
        inner = [(k, self.expr(child, f"{path}[{k!r}]")) for k, child in node.children]
        if node.container == "dict":
            return "{" + ", ".join(f"{k!r}: {e}" for k, e in inner) + "}"
        body = ", ".join(e for _, e in inner)
        return f"({body},)" if node.container == "tuple" else f"[{body}]"

    def module(self, fields, path, statics=()):
        name = f"M{len(self.classes)}"
        self.classes.append(None)  # reserve the index; nested classes get later numbers
        index = len(self.classes) - 1
        self.kinds.add("module")
        args, lines = [], [f"class {name}(eqx.Module):"]
        for key, node in list(fields) + list(statics):
            if node.static:
                lines.append(f"    {key}: object = eqx.field(static=True)")
            else:
                lines.append(f"    {key}: object")
            args.append(f"{key}={self.expr(node, f'{path}.{key}')}")
        self.classes[index] = "\n".join(lines)
        return f"{name}({', '.join(args)})"


# How the loss starts its sum: in float32 (the first, simplest choice), or from a Python
# 0.0, so the loss takes the dtype the params promote to (bfloat16 for bfloat16 params).
ACCUMULATORS = ("jnp.float32(0.0)", "0.0")


def _render(first, fields, statics, accumulator=ACCUMULATORS[0], position=0):
    w = _Writer()
    named = [(f"f{i}", n) for i, n in enumerate(fields)]
    named.insert(min(position, len(named)), ("w", Node(leaf=first)))  # the float field, not always first
    construct = w.module(named, "m", [(f"s{i}", n) for i, n in enumerate(statics)])
    loss = "\n".join(["def loss(m):", f"    total = {accumulator}"]
                     + [f"    total = total + {t}" for t in w.terms] + ["    return total"])
    source = "\n\n\n".join([PRELUDE.rstrip(), *reversed(w.classes)]) + f"\n\n\nmodel = {construct}\n\n\n{loss}\n\n\noptimum = 0.0\n"
    described = "module with " + ", ".join(p for p in w.parts if p)
    if accumulator != ACCUMULATORS[0]:
        described += " (loss in the params' dtype)"
    return Case(source, described, frozenset(w.kinds))


@st.composite
def modules(draw, max_fields=4):
    """A custom `eqx.Module` class, made on the fly, with fields of every leaf kind."""
    first = draw(float_arrays())
    fields = draw(st.lists(nodes(), min_size=0, max_size=max_fields))
    statics = draw(st.lists(static_nodes(), min_size=0, max_size=2))
    position = draw(st.integers(0, len(fields)))  # 0 first: Hypothesis shrinks towards it
    return _render(first, fields, statics, draw(st.sampled_from(ACCUMULATORS)), position)


# --- real eqx.nn layers ----------------------------------------------------------------

# (constructor with {k} for a key, forward expression with {m} for the model, description)
LAYERS = (
    ("eqx.nn.Linear(3, 2, key={k})", "{m}(jnp.ones(3))", "Linear"),
    ("eqx.nn.MLP(3, 2, 4, 2, activation={act}, key={k})", "{m}(jnp.ones(3))", "MLP"),
    ("eqx.nn.Conv1d(2, 3, 3, key={k})", "{m}(jnp.ones((2, 5)))", "Conv1d"),
    ("eqx.nn.LayerNorm(4)", "{m}(jnp.arange(4.0))", "LayerNorm"),
    ("eqx.nn.GRUCell(3, 2, key={k})", "{m}(jnp.ones(3), jnp.zeros(2))", "GRUCell"),
    ("eqx.nn.Embedding(5, 3, key={k})", "{m}(jnp.asarray(2))", "Embedding"),
    ("eqx.nn.Sequential([eqx.nn.Linear(3, 4, key={k}), eqx.nn.Lambda({act}), eqx.nn.Linear(4, 3, key={k2})])",
     "{m}(jnp.ones(3))", "Sequential with Lambda"),
)


@st.composite
def nn_models(draw):
    """A real `eqx.nn` layer (or a Sequential of them) with a forward pass in the loss."""
    template, forward, name = draw(st.sampled_from(LAYERS))
    act = draw(st.sampled_from(CALLABLES[:3]))
    seed = draw(st.integers(0, 3))
    ctor = template.format(k=f"jax.random.PRNGKey({seed})", k2=f"jax.random.PRNGKey({seed + 10})", act=act)
    source = "\n".join([
        PRELUDE,
        f"target = {ctor}",
        "# Start a little away from the target; the optimum (loss 0) is the target itself.",
        "model = jax.tree_util.tree_map(lambda a: a + 0.25 if eqx.is_inexact_array(a) else a, target)",
        "target = eqx.filter(target, eqx.is_inexact_array)",
        "",
        "",
        "def loss(m):",
        "    params = eqx.filter(m, eqx.is_inexact_array)",
        "    diffs = jax.tree_util.tree_map(lambda a, b: jnp.sum((a - b) ** 2), params, target)",
        "    fit = sum(jax.tree_util.tree_leaves(diffs))",
        f"    return fit + 0.0 * jnp.sum({forward.format(m='m')})",
        "",
        "",
        "optimum = 0.0",
        "",
    ])
    return Case(source, f"eqx.nn {name} ({act})" if "{act}" in template else f"eqx.nn {name}", frozenset({"eqx.nn"}))


def cases():
    """Custom modules or real eqx.nn layers."""
    return st.one_of(modules(), nn_models())
