"""Realistic Equinox models, as standalone sources: what users really hand to L-BFGS.

Each entry is a `Case` (see `_strategies`): source defining `model`, `loss` and `optimum`
(None where it is not known), runnable alone with jax, equinox and numpy, so it can go to a
worker process, into a reproducer, or through `repro.check`. Data come from NumPy's
generator, so every JAX version solves the same problem.

The set covers what the generated modules do not: losses that L-BFGS does not solve in a
few steps (a real regression, a network where unit-step L-BFGS lands on another stationary
point), `eqx.nn` layers whose behaviour a non-array field steers (`Dropout.inference`,
`GRUCell.use_bias`, `MultiheadAttention.num_heads`), and integer/boolean array fields.
"""

from ._strategies import Case

_HEAD = "import equinox as eqx\nimport jax\nimport jax.numpy as jnp\nimport numpy as np\n\nrng = np.random.default_rng(0)\n"


def _case(name, description, body, kinds):
    return name, Case(_HEAD + body, description, frozenset(kinds))


CORPUS = dict([
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
])
