"""Fixed Equinox modules, as standalone sources: realistic models and the survey's corpus. No JAX.

Each entry is source defining `model`, `loss` and `optimum` (None where it is not known),
runnable alone with jax, equinox and numpy, so it can go to a worker process, into a
reproducer, or through `repro.check` (`repro._jax._corpus` builds them in an env). Data come
from NumPy's generator, so every JAX version solves the same problem. Host code (the survey)
reads the sources as text.

The set covers what the generated modules do not: losses that L-BFGS does not solve in a
few steps (a real regression, a network where unit-step L-BFGS lands on another stationary
point), `eqx.nn` layers whose behaviour a non-array field steers (`Dropout.inference`,
`GRUCell.use_bias`, `MultiheadAttention.num_heads`), and integer/boolean array fields.

Why one module of this length: it is mostly data, each module's source text.
"""

import dataclasses

from ._catalogue import BUILTIN_MODULE, BUILTIN_PROBLEM


@dataclasses.dataclass(frozen=True)
class Entry:
    """A module as standalone source (defining model, loss, optimum) and what it is."""

    source: str
    description: str
    kinds: frozenset = frozenset()


_HEAD = "import equinox as eqx\nimport jax\nimport jax.numpy as jnp\nimport numpy as np\n\nrng = np.random.default_rng(0)\n"


def _case(name, description, body, kinds):
    return name, Entry(_HEAD + body, description, frozenset(kinds))


REALISTIC = dict([
    _case("mlp_regression", "eqx.nn.MLP regression (gelu), slow to converge", '''
model = eqx.nn.MLP(2, 1, 16, 2, activation=jax.nn.gelu, key=jax.random.PRNGKey(0))
x = jnp.asarray(np.linspace(-1, 1, 64).reshape(32, 2), jnp.float32)
y = jnp.sin(3 * x[:, :1]) * jnp.cos(2 * x[:, 1:])


def loss(m):
    return jnp.mean((jax.vmap(m)(x) - y) ** 2)


optimum = None
''', {"callable", "eqx.nn"}),
    _case("tanh_fields", "tanh network with str/bool/float fields; unit steps find other stationary points", '''
class Net(eqx.Module):
    w1: jax.Array
    b1: jax.Array
    w2: jax.Array
    name: str
    residual: bool
    scale: float

    def __call__(self, x):
        h = jnp.tanh(self.scale * (self.w1 @ x + self.b1))
        out = self.w2 @ h
        return out + x[:1] if self.residual else out


model = Net(jnp.asarray(2.0 * rng.standard_normal((6, 2)), jnp.float32), jnp.zeros(6),
            jnp.asarray(2.0 * rng.standard_normal((1, 6)), jnp.float32), "net", True, 2.0)
x = jnp.asarray(rng.standard_normal((40, 2)), jnp.float32)
y = jnp.sign(x[:, :1] * x[:, 1:])


def loss(m):
    return jnp.mean((jax.vmap(m)(x) - y) ** 2)


optimum = None
''', {"py_str", "py_bool", "py_float"}),
    _case("dropout_mlp", "Linear-Dropout-Linear; Dropout.inference steers the forward pass", '''
class Net(eqx.Module):
    first: eqx.nn.Linear
    dropout: eqx.nn.Dropout
    last: eqx.nn.Linear

    def __call__(self, x):
        return self.last(jax.nn.relu(self.dropout(self.first(x))))


k1, k2 = jax.random.split(jax.random.PRNGKey(1))
model = Net(eqx.nn.Linear(3, 8, key=k1), eqx.nn.Dropout(0.1, inference=True), eqx.nn.Linear(8, 1, key=k2))
x = jnp.asarray(rng.standard_normal((24, 3)), jnp.float32)
y = jnp.asarray(rng.standard_normal((24, 1)), jnp.float32)


def loss(m):
    return jnp.mean((jax.vmap(m)(x) - y) ** 2) + 1e-2 * jnp.sum(m.first.weight ** 2)


optimum = None
''', {"eqx.nn", "steering"}),
    _case("gru_sequence", "eqx.nn.GRUCell scanned over a sequence (use_bias, hidden_size fields)", '''
cell = eqx.nn.GRUCell(2, 4, key=jax.random.PRNGKey(2))
model = (cell, eqx.nn.Linear(4, 1, key=jax.random.PRNGKey(3)))
xs = jnp.asarray(rng.standard_normal((8, 6, 2)), jnp.float32)
ys = jnp.asarray(rng.standard_normal((8, 1)), jnp.float32)


def predict(m, seq):
    cell, head = m
    h, _ = jax.lax.scan(lambda h, x: (cell(x, h), None), jnp.zeros(4), seq)
    return head(h)


def loss(m):
    return jnp.mean((jax.vmap(lambda s: predict(m, s))(xs) - ys) ** 2)


optimum = None
''', {"eqx.nn", "steering"}),
    _case("attention", "eqx.nn.MultiheadAttention (num_heads and bias flags are fields)", '''
attn = eqx.nn.MultiheadAttention(2, 4, key=jax.random.PRNGKey(4))
model = attn
q = jnp.asarray(rng.standard_normal((5, 4)), jnp.float32)
target = jnp.asarray(rng.standard_normal((5, 4)), jnp.float32)


def loss(m):
    return jnp.mean((m(q, q, q) - target) ** 2)


optimum = None
''', {"eqx.nn", "steering"}),
    _case("conv_classifier", "eqx.nn.Conv1d + Linear head (stride/padding/dilation are fields)", '''
class Net(eqx.Module):
    conv: eqx.nn.Conv1d
    head: eqx.nn.Linear

    def __call__(self, x):
        return self.head(jnp.mean(jax.nn.softplus(self.conv(x)), axis=1))


model = Net(eqx.nn.Conv1d(2, 3, 3, key=jax.random.PRNGKey(5)), eqx.nn.Linear(3, 2, key=jax.random.PRNGKey(6)))
xs = jnp.asarray(rng.standard_normal((10, 2, 7)), jnp.float32)
labels = jnp.asarray(rng.integers(0, 2, 10))


def loss(m):
    logits = jax.vmap(m)(xs)
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(10), labels])


optimum = None
''', {"eqx.nn", "steering"}),
    _case("gather_ints", "a module with an integer index array (gathers its inputs)", '''
class Gather(eqx.Module):
    index: jax.Array
    weight: jax.Array

    def __call__(self, x):
        return jnp.dot(self.weight, x[self.index])


model = Gather(jnp.asarray([0, 2, 3], jnp.int32), jnp.ones(3))
x = jnp.asarray(rng.standard_normal((16, 4)), jnp.float32)
y = x[:, 0] - 2 * x[:, 3]


def loss(m):
    return jnp.mean((jax.vmap(m)(x) - y) ** 2)


optimum = None
''', {"int_array"}),
    _case("stored_tokens", "eqx.nn.Embedding with the token ids it reads stored as an int32 field after it", '''
class Tagger(eqx.Module):
    embed: eqx.nn.Embedding
    tokens: jax.Array

    def __call__(self):
        return jnp.sum(jax.vmap(self.embed)(self.tokens), axis=1)


model = Tagger(eqx.nn.Embedding(6, 3, key=jax.random.PRNGKey(7)), jnp.asarray([1, 4, 2, 5], jnp.int32))
target = jnp.asarray([1.0, -1.0, 0.5, 0.0], jnp.float32)


def loss(m):
    return jnp.mean((m() - target) ** 2) + 1e-2 * jnp.sum(m.embed.weight ** 2)


optimum = None
''', {"int_array", "eqx.nn"}),
    _case("masked_linear", "a module with a boolean mask array", '''
class Masked(eqx.Module):
    weight: jax.Array
    mask: jax.Array

    def __call__(self, x):
        return jnp.where(self.mask, self.weight, 0.0) @ x


model = Masked(jnp.asarray(rng.standard_normal((2, 3)), jnp.float32), jnp.asarray([[True, False, True]] * 2))
x = jnp.asarray(rng.standard_normal((12, 3)), jnp.float32)
y = jnp.asarray(rng.standard_normal((12, 2)), jnp.float32)


def loss(m):
    return jnp.mean((jax.vmap(m)(x) - y) ** 2) + 0.1 * jnp.sum(m.weight ** 2)


optimum = None
''', {"bool_array"}),
    # Structures from real user code (PINNs, GPs, CNN lists, counters, unit steps that blow up),
    # written here, never measured by the survey: they are judged by their leaf paths.
    _case("pinn_masked", "a PINN-style module: MLP, boundary mask, collocation points, a -inf floor, a step counter", '''
class PINN(eqx.Module):
    net: eqx.nn.MLP
    boundary: jax.Array
    points: jax.Array
    floor: float
    step: jax.Array

    def residual(self, x):
        u = lambda z: self.net(z)[0]
        du = lambda z: jax.grad(u)(z)[0]
        return jax.grad(du)(x)[0] + jnp.sin(3.0 * x[0])


model = PINN(eqx.nn.MLP(1, 1, 8, 2, activation=jax.nn.tanh, key=jax.random.PRNGKey(11)),
             jnp.asarray([True] + [False] * 10 + [True]), jnp.linspace(-1.0, 1.0, 12).reshape(12, 1),
             -float("inf"), jnp.asarray(0, jnp.int32))


def loss(m):
    pts = jax.lax.stop_gradient(m.points)
    interior = jax.vmap(m.residual)(pts) ** 2
    edge = jax.vmap(lambda x: m.net(x)[0])(pts) ** 2
    per_point = jnp.where(m.boundary, 10.0 * edge, interior)
    return jnp.mean(jnp.maximum(per_point, m.floor))


optimum = None
''', {"eqx.nn", "bool_array", "int_array", "py_float"}),
    _case("gp_kernel", "a GP regression: log-scales, a tuple of inducing arrays, a kernel class and a jitter float", '''
class RBF:
    @staticmethod
    def __call__(a, b, log_scale):
        return jnp.exp(-0.5 * jnp.sum((a - b) ** 2) / jnp.exp(2.0 * log_scale))


class GP(eqx.Module):
    log_scale: jax.Array
    log_noise: jax.Array
    inducing: tuple
    kernel: type
    jitter: float


x = jnp.asarray(rng.uniform(-2.0, 2.0, (10, 1)), jnp.float32)
y = jnp.sin(2.0 * x[:, 0])
model = GP(jnp.asarray(0.3), jnp.asarray(-1.0), (x[:5], y[:5]), RBF, 1e-4)


def loss(m):
    k = m.kernel()
    z, _ = m.inducing
    kzz = jax.vmap(lambda a: jax.vmap(lambda b: k(a, b, m.log_scale))(z))(z) + m.jitter * jnp.eye(5)
    kxz = jax.vmap(lambda a: jax.vmap(lambda b: k(a, b, m.log_scale))(z))(x)
    mean = kxz @ jnp.linalg.solve(kzz, m.inducing[1])
    return jnp.mean((mean - y) ** 2) / jnp.exp(2.0 * m.log_noise) + 2.0 * m.log_noise


optimum = None
''', {"py_float", "class", "tuple"}),
    _case("cnn_list", "a CNN as a plain list of layers with jax.nn.relu between them", '''
k1, k2, k3 = jax.random.split(jax.random.PRNGKey(12), 3)
model = [eqx.nn.Conv1d(1, 4, 3, key=k1), jax.nn.relu, eqx.nn.Conv1d(4, 2, 3, key=k2), jax.nn.relu,
         eqx.nn.Linear(2 * 6, 1, key=k3)]
xs = jnp.asarray(rng.standard_normal((16, 1, 10)), jnp.float32)
ys = jnp.asarray(rng.standard_normal((16, 1)), jnp.float32)


def forward(layers, x):
    for layer in layers[:-1]:
        x = layer(x)
    return layers[-1](jnp.ravel(x))


def loss(m):
    return jnp.mean((jax.vmap(lambda x: forward(m, x))(xs) - ys) ** 2)


optimum = None
''', {"eqx.nn", "callable", "list"}),
    _case("counter_net", "a Linear layer with an int32 step counter kept beside it", '''
class Counted(eqx.Module):
    layer: eqx.nn.Linear
    calls: jax.Array


model = Counted(eqx.nn.Linear(3, 2, key=jax.random.PRNGKey(13)), jnp.asarray(0, jnp.int32))
x = jnp.asarray(rng.standard_normal((20, 3)), jnp.float32)
y = jnp.asarray(rng.standard_normal((20, 2)), jnp.float32)


def loss(m):
    return jnp.mean((jax.vmap(m.layer)(x) - y) ** 2) + 0.0 * m.calls


optimum = None
''', {"eqx.nn", "int_array"}),
    _case("exploding_mlp", "an MLP regression (silu, sum of squares, large targets) whose unit-step L-BFGS blows up", '''
class Regression(eqx.Module):
    mlp: eqx.nn.MLP

    def __call__(self, x):
        return self.mlp(x)


rng = np.random.default_rng(21)
model = Regression(eqx.nn.MLP(2, 1, 8, 2, activation=jax.nn.silu, key=jax.random.PRNGKey(21)))
x = jnp.asarray(rng.uniform(-2, 2, (48, 2)), jnp.float32)
y = jnp.asarray(10.0 * (x[:, :1] * x[:, 1:] + np.cos(2 * x[:, :1])) + 10.0, jnp.float32)


def loss(m):
    return jnp.sum((jax.vmap(m)(x) - y) ** 2)


optimum = None
''', {"eqx.nn", "callable"}),
])


# --- The survey's fixed corpus: one small module per content class ------------------------
# `repro survey` runs each of these (and the built-in problem) through every scenario in every
# cell; the generic expectation rules (repro/_expectations.py) are derived from what they do.
# Small on purpose (a few float arrays, quadratic-ish losses): a survey cell compiles each one
# for every scenario, and there are sixty cells. Every rule of the generic table is covered by
# at least one of them (tests/test_survey.py checks it on the stored observations).

BUILTIN = Entry(f"from repro._jax._problems import mlp_problem\n\nmodel, loss, optimum = mlp_problem()\nproblem = \"{BUILTIN_PROBLEM}\"\n",
               "the built-in problem: eqx.nn.MLP teacher-student", frozenset({"callable", "eqx.nn"}))

_SMALL = "import equinox as eqx\nimport jax\nimport jax.numpy as jnp\n\n\n"


def _module(fields, terms, accumulator="jnp.float32(0.0)"):
    """Source of a one-class module: `fields` [(name, constructor)], loss = sum of `terms`."""
    lines = ["class M(eqx.Module):"] + [f"    {name}: object" for name, _ in fields]
    model = "model = M(" + ", ".join(f"{name}={ctor}" for name, ctor in fields) + ")"
    body = "\n".join(["def loss(m):", f"    total = {accumulator}"] + [f"    total = total + {t}" for t in terms]
                     + ["    return total"])
    return _SMALL + "\n".join(lines) + "\n\n\n" + model + "\n\n\n" + body + "\n\n\noptimum = 0.0\n"


_W = ("w", "jnp.asarray([1.5, -1.0, 0.0], jnp.float32)")
_QW = "jnp.sum(jnp.logspace(-1.0, 1.0, 3) * (m.w - 0.5) ** 2)"

SURVEY = {
    BUILTIN_MODULE: BUILTIN,
    "floats_only": Entry(_module([_W, ("v", "jnp.full((2, 2), 2.0, jnp.float32)")],
                                [_QW, "jnp.sum((m.v - 0.5) ** 2)"]), "float32 arrays only", frozenset({"float"})),
    "callable_scalar": Entry(_module([_W, ("act", "jax.nn.tanh"), ("scale", "0.5")],
                                    [_QW, "0.0 * m.act(m.scale * jnp.float32(0.3))"]),
                            "float32 array, an activation and a Python float (the loss calls them)",
                            frozenset({"float", "callable", "py_float"})),
    "steering_flag": Entry(_module([_W, ("flag", "True")], [_QW, "(0.0 if m.flag else 1.0)"]),
                          "float32 array and a flag that selects a branch", frozenset({"float", "steering"})),
    "unused_name": Entry(_module([_W, ("name", "'layer'")], [_QW]),
                        "float32 array and a str field the loss never reads", frozenset({"float", "py_str"})),
    "dropout": Entry(_module([_W, ("drop", "eqx.nn.Dropout(0.5, inference=True)")],
                            [_QW, "jnp.sum(m.drop(jnp.zeros(2)))"]),
                    "float32 array and eqx.nn.Dropout(inference=True)", frozenset({"float", "steering"})),
    "tuple_top": Entry(_SMALL + "model = (jnp.asarray([1.5, -1.0], jnp.float32), jax.nn.relu)\n\n\n"
                      "def loss(m):\n    return jnp.sum((m[0] - 0.5) ** 2) + 0.0 * m[1](jnp.float32(0.3))\n\n\n"
                      "optimum = 0.0\n", "a tuple (float32 array, activation), not an eqx.Module",
                      frozenset({"float", "callable", "tuple"})),
    "int_after_float": Entry(_module([_W, ("n", "jnp.arange(2, dtype=jnp.int32)")], [_QW, "0.0 * jnp.sum(m.n)"]),
                            "float32 array, then an int32 array", frozenset({"float", "int_array"})),
    "int_first": Entry(_module([("n", "jnp.arange(2, dtype=jnp.int32)"), _W], [_QW, "0.0 * jnp.sum(m.n)"]),
                      "int32 array first, then a float32 array", frozenset({"float", "int_array"})),
    "bool_mask": Entry(_module([_W, ("mask", "jnp.array([True, False, True])")],
                              ["jnp.sum(jnp.where(m.mask, (m.w - 0.5) ** 2, (m.w - 0.5) ** 2))"]),
                      "float32 array and a bool mask", frozenset({"float", "bool_array"})),
    "bf16_loss": Entry(_module([("w", "jnp.asarray([1.5, -1.0, 0.0], jnp.bfloat16)")], ["jnp.sum((m.w - 0.5) ** 2)"],
                               accumulator="0.0"),
                      "bfloat16 array, loss in bfloat16", frozenset({"low_precision"})),
    "mixed_dtypes": Entry(_module([("w", "jnp.asarray([1.5, -1.0], jnp.float16)"), ("v", "jnp.full((2,), 2.0, jnp.float32)")],
                                 ["jnp.sum((m.w - 0.5) ** 2)", "jnp.sum((m.v - 0.5) ** 2)"]),
                         "float16 and float32 arrays", frozenset({"low_precision", "float"})),
    "steering_mixed": Entry(_module([("w", "jnp.asarray([1.5, -1.0], jnp.float16)"), ("v", "jnp.full((2,), 2.0, jnp.float32)"),
                                    ("flag", "True")],
                                   ["jnp.sum((m.w - 0.5) ** 2)", "jnp.sum((m.v - 0.5) ** 2)", "(0.0 if m.flag else 1.0)"]),
                           "float16 and float32 arrays and a steering flag", frozenset({"low_precision", "steering"})),
    "steering_bf16_loss": Entry(_module([("w", "jnp.asarray([1.5, -1.0, 0.0], jnp.bfloat16)"), ("flag", "True")],
                                        ["jnp.sum((m.w - 0.5) ** 2)", "(0.0 if m.flag else 1.0)"], accumulator="0.0"),
                                "bfloat16 array, loss in bfloat16, a steering flag", frozenset({"low_precision", "steering"})),
    "steering_bf16": Entry(_module([("w", "jnp.asarray([1.5, -1.0, 0.0], jnp.bfloat16)"), ("flag", "True")],
                                   ["jnp.sum((m.w - 0.5) ** 2)", "(0.0 if m.flag else 1.0)"]),
                           "bfloat16 array, loss in float32, a steering flag", frozenset({"low_precision", "steering"})),
    "unused_mixed": Entry(_module([("w", "jnp.asarray([1.5, -1.0], jnp.float16)"), ("v", "jnp.full((2,), 2.0, jnp.float32)"),
                                   ("name", "'layer'")], ["jnp.sum((m.w - 0.5) ** 2)", "jnp.sum((m.v - 0.5) ** 2)"]),
                          "float16 and float32 arrays, an unread str field", frozenset({"low_precision", "py_str"})),
    "unused_bf16_loss": Entry(_module([("w", "jnp.asarray([1.5, -1.0, 0.0], jnp.bfloat16)"), ("name", "'layer'")],
                                      ["jnp.sum((m.w - 0.5) ** 2)"], accumulator="0.0"),
                             "bfloat16 array, loss in bfloat16, an unread str field", frozenset({"low_precision", "py_str"})),
    # Leaf order and leaf shape (repro/_leaves.py): which leaf a stage of L-BFGS meets first.
    "bool_before_fn": Entry(_module([_W, ("mask", "jnp.array([True, False, True])"), ("act", "jax.nn.gelu")],
                                    ["jnp.sum(jnp.where(m.mask, (m.w - 0.5) ** 2, (m.w - 0.5) ** 2))",
                                     "0.0 * m.act(jnp.float32(0.3))"]),
                            "float32 array, a bool mask, then a plain function: the subtraction meets the mask first",
                            frozenset({"float", "bool_array", "callable"})),
    "int_and_bool": Entry(_module([_W, ("n", "jnp.arange(2, dtype=jnp.int32)"), ("mask", "jnp.array([True, False, True])")],
                                  ["jnp.sum(jnp.where(m.mask, (m.w - 0.5) ** 2, (m.w - 0.5) ** 2))", "0.0 * jnp.sum(m.n)"]),
                          "float32 array, an int32 array, then a bool mask", frozenset({"float", "int_array", "bool_array"})),
    "int_counter": Entry(_module([_W, ("step", "jnp.asarray(0, jnp.int32)")], [_QW, "0.0 * m.step"]),
                         "float32 array and a scalar int32 counter", frozenset({"float", "int_array"})),
    "int_counter_first": Entry(_module([("step", "jnp.asarray(0, jnp.int32)"), _W], [_QW, "0.0 * m.step"]),
                               "a scalar int32 counter first, then a float32 array", frozenset({"float", "int_array"})),
    "int_same_shape": Entry(_module([("w", "jnp.asarray([1.5, -1.0], jnp.float32)"), ("n", "jnp.arange(2, dtype=jnp.int32)")],
                                    ["jnp.sum((m.w - 0.5) ** 2)", "0.0 * jnp.sum(m.n)"]),
                            "float32 array, then an int32 array of the same shape", frozenset({"float", "int_array"})),
    "steering_mixed_float_first": Entry(_module([("v", "jnp.full((2,), 2.0, jnp.float32)"),
                                                 ("w", "jnp.asarray([1.5, -1.0], jnp.float16)"), ("flag", "True")],
                                                ["jnp.sum((m.v - 0.5) ** 2)", "jnp.sum((m.w - 0.5) ** 2)",
                                                 "(0.0 if m.flag else 1.0)"]),
                                        "float32 then float16 arrays and a steering flag",
                                        frozenset({"low_precision", "float", "steering"})),
    "f16_params": Entry(_module([("w", "jnp.asarray([1.5, -1.0, 0.0], jnp.float16)")], ["jnp.sum((m.w - 0.5) ** 2)"]),
                        "float16 array, loss in float32", frozenset({"low_precision"})),
    "dtype_field": Entry(_module([("w", "jnp.asarray([1.5, -1.0, 0.0], jnp.bfloat16)"), ("dtype", "jnp.float32")],
                                 ["jnp.sum((jnp.asarray(m.w, m.dtype) - 0.5) ** 2)"], accumulator="0.0"),
                         "bfloat16 array computed in the float32 its `dtype` field names: None leaves it bfloat16",
                         frozenset({"low_precision", "class"})),
    "mixed_float_first": Entry(_module([("v", "jnp.full((2,), 2.0, jnp.float32)"), ("w", "jnp.asarray([1.5, -1.0], jnp.float16)")],
                                       ["jnp.sum((m.v - 0.5) ** 2)", "jnp.sum((m.w - 0.5) ** 2)"]),
                               "float32 then float16 arrays", frozenset({"low_precision", "float"})),
    "mlp_inside": Entry(_SMALL + """class Net(eqx.Module):
    mlp: eqx.nn.MLP
    scale: float


target = eqx.nn.MLP(1, 1, 3, 1, key=jax.random.PRNGKey(8))
model = Net(jax.tree_util.tree_map(lambda a: a + 0.25 if eqx.is_inexact_array(a) else a, target), 2.0)
target = eqx.filter(target, eqx.is_inexact_array)
x = jnp.linspace(-1.0, 1.0, 4).reshape(4, 1)


def loss(m):
    diffs = jax.tree_util.tree_map(lambda a, b: jnp.sum((a - b) ** 2), eqx.filter(m.mlp, eqx.is_inexact_array), target)
    return sum(jax.tree_util.tree_leaves(diffs)) + 0.0 * jnp.sum(jax.vmap(m.mlp)(x)) * m.scale


optimum = 0.0
""", "a user module holding an eqx.nn.MLP (relu) and a Python float", frozenset({"eqx.nn", "callable", "py_float"})),
}
