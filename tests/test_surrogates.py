import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax.models import surrogates


@pytest.mark.parametrize("module,n_params", [
    (surrogates.LinearConvSurrogate(out_channels=3),
     5 * 5 * 6 * 16 + 16 + 5 * 5 * 16 * 3 + 3),
    (surrogates.MixingSurrogate(out_channels=4), 6 * 16 + 16 + 16 * 4 + 4),
])
def test_shapes_and_parameter_counts(module, n_params):
  x = jnp.ones((2, 12, 10, 6))
  params = module.init(jax.random.key(0), x)
  assert module.apply(params, x).shape[:3] == (2, 12, 10)
  assert module.apply(params, x).shape[3] == module.out_channels
  assert sum(p.size for p in jax.tree_util.tree_leaves(params)) == n_params


def test_paper_celeba_surrogate_sizes():
  """16 filters of 5x5x3, then 3 filters of 5x5x16 (paper 3.1)."""
  m = surrogates.LinearConvSurrogate(out_channels=3)
  p = m.init(jax.random.key(0), jnp.ones((1, 8, 8, 3)))["params"]
  assert p["conv1"]["kernel"].shape == (5, 5, 3, 16)
  assert p["conv2"]["kernel"].shape == (5, 5, 16, 3)


def test_mixing_surrogate_is_per_pixel():
  m = surrogates.MixingSurrogate(out_channels=2)
  x = jax.random.normal(jax.random.key(1), (1, 6, 6, 3))
  p = m.init(jax.random.key(0), x)
  y = m.apply(p, x)
  y2 = m.apply(p, x.at[0, 0, 0].set(5.0))
  changed = np.argwhere(np.any(np.asarray(y != y2), axis=-1))
  assert changed.tolist() == [[0, 0, 0]]


def test_effective_kernel_reproduces_the_surrogate_in_the_interior():
  m = surrogates.LinearConvSurrogate(out_channels=2)
  x = jax.random.normal(jax.random.key(1), (2, 24, 24, 3))
  params = m.init(jax.random.key(0), x)
  k = surrogates.effective_kernel(params)
  assert k.shape == (9, 9, 3, 2)
  direct = jax.lax.conv_general_dilated(
      x, k, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  direct = direct + surrogates.effective_bias(params)
  y = m.apply(params, x)
  np.testing.assert_allclose(y[:, 4:-4, 4:-4], direct[:, 4:-4, 4:-4],
                             rtol=1e-4, atol=1e-4)
