"""`TableCategorical`: a Categorical whose rows come from a conditional table, sampled by inverse CDF.

NumPyro's `Categorical.sample` uses Gumbel-max (one random number per category). Here each persona needs one
uniform per attribute, compared against its row's precomputed CDF, and `log_prob` is a table lookup, so the
[n, K] logits are never materialised. It is still an ordinary NumPyro distribution (support, log_prob,
enumerate_support), so handlers and inference work on the model unchanged.
"""
import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions import Distribution, constraints


def cdf_table(probs: np.ndarray) -> np.ndarray:
    """Row CDFs [R, K] as float32; entries at and after each row's last non-zero category are exactly 1, so a
    uniform in [0, 1) can never select a zero-probability (masked) category."""
    cdf = np.cumsum(probs, axis=-1)
    last = probs.shape[-1] - 1 - np.argmax((probs > 0)[:, ::-1], axis=-1)
    cdf[np.arange(probs.shape[-1])[None, :] >= last[:, None]] = 1.0
    return cdf.astype(np.float32)


class TableCategorical(Distribution):
    """Categorical over K values with probabilities `table[rows]`: `log_table` and `cdf` are [R, K], `rows` the
    (flattened) parent-combination index of each element of the batch."""

    arg_constraints = {}
    has_enumerate_support = True
    pytree_data_fields = ("log_table", "cdf", "rows")

    def __init__(self, log_table, cdf, rows, *, validate_args=None):
        self.log_table, self.cdf, self.rows = log_table, cdf, rows
        super().__init__(batch_shape=jnp.shape(rows), validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.log_table.shape[-1] - 1)

    def icdf(self, u):
        """The category whose CDF interval holds u (u in [0, 1)): the number of the row's CDF entries <= u, found by
        a branchless binary search (log2 K scalar gathers per element instead of gathering the whole [.., K] row)."""
        k = self.cdf.shape[-1]
        flat, base = self.cdf.reshape(-1), self.rows * k
        count = jnp.zeros(jnp.shape(u), jnp.int32)
        step = 1 << (k.bit_length() - 1)
        while step:
            candidate = count + step
            below = jnp.take(flat, base + jnp.minimum(candidate, k) - 1, mode="clip") <= u
            count = jnp.where((candidate <= k) & below, candidate, count)
            step >>= 1
        return count

    def sample(self, key, sample_shape=()):
        return self.icdf(jax.random.uniform(key, sample_shape + self.batch_shape))

    def log_prob(self, value):
        k = self.log_table.shape[-1]
        return jnp.take(self.log_table.reshape(-1), self.rows * k + value, mode="clip")

    def enumerate_support(self, expand=True):
        values = jnp.arange(self.log_table.shape[-1], dtype=jnp.int32).reshape((-1,) + (1,) * len(self.batch_shape))
        return jnp.broadcast_to(values, values.shape[:1] + self.batch_shape) if expand else values
