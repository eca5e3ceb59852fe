"""Property tests (hypothesis): operators, metrics and input validation."""
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from blindinv_jax import metrics, operators as ops, runner, solver

SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

floats = st.floats(-2.0, 2.0, allow_nan=False, width=32)


@st.composite
def image_pair_and_kernel(draw):
  n, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
  h, w = draw(st.integers(3, 9)), draw(st.integers(3, 9))
  kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
  arr = lambda shape: draw(hnp.arrays(np.float32, shape, elements=floats))
  return arr((n, h, w, c)), arr((n, h, w, c)), arr((kh, kw))


@SETTINGS
@given(image_pair_and_kernel(), floats, floats)
def test_blur_is_linear(xyk, a, b):
  x, y, k = xyk
  lhs = ops.blur(a * x + b * y, k)
  rhs = a * ops.blur(x, k) + b * ops.blur(y, k)
  np.testing.assert_allclose(lhs, rhs, atol=1e-4 * (1 + np.abs(rhs).max()))


@SETTINGS
@given(image_pair_and_kernel(), floats)
def test_edges_are_linear(xyk, a):
  x, y, _ = xyk
  lhs = ops.edges(a * x + y)
  rhs = a * ops.edges(x) + ops.edges(y)
  np.testing.assert_allclose(lhs, rhs, atol=1e-4 * (1 + np.abs(rhs).max()))


@SETTINGS
@given(image_pair_and_kernel(), st.booleans())
def test_adjoint_dot_product(xyk, use_edges):
  x, y, k = xyk
  op = ops.edges if use_edges else (lambda v: ops.blur(v, k))
  adj = ops.adjoint(op, jnp.asarray(x))
  lhs = float(jnp.vdot(op(x), y))
  rhs = float(jnp.vdot(x, adj(jnp.asarray(y))))
  assert abs(lhs - rhs) <= 1e-3 * (1 + abs(lhs))


@SETTINGS
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 3), st.integers(2, 6),
                                         st.integers(2, 6), st.integers(1, 3)),
                  elements=st.floats(-1, 1, width=32)))
def test_psnr_of_identical_images_is_capped_and_symmetric(x):
  np.testing.assert_allclose(metrics.psnr(x, x), 100.0)
  y = np.clip(x[::-1] * 0.5, -1, 1)
  np.testing.assert_allclose(metrics.psnr(x, y), metrics.psnr(y, x),
                             rtol=1e-6)
  assert np.all(np.asarray(metrics.psnr(x, y)) <= 100.0)


@SETTINGS
@given(st.integers(1, 3), st.integers(2, 4), st.data())
def test_match_sources_is_permutation_invariant(n, s, data):
  rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
  true = rng.uniform(-1, 1, (n, s, 6, 6, 1)).astype(np.float32)
  est = np.clip(true + rng.normal(0, 0.2, true.shape), -1, 1).astype(
      np.float32)
  perm = np.stack([data.draw(st.permutations(range(s))) for _ in range(n)])
  shuffled = np.take_along_axis(est, perm[:, :, None, None, None], axis=1)
  m1, _, s1 = metrics.match_sources(est, true)
  m2, p2, s2 = metrics.match_sources(shuffled, true)
  np.testing.assert_array_equal(m1, m2)
  np.testing.assert_allclose(s1, s2)
  # The estimate nearest each true source is found (noise << distance).
  np.testing.assert_array_equal(np.take_along_axis(perm, p2, axis=1),
                                np.tile(np.arange(s), (n, 1)))


BAD_DTYPES = st.sampled_from([np.bool_, np.complex64, np.dtype("U3"),
                              np.dtype("O")])


@st.composite
def bad_observations(draw):
  """Observations that must be refused for the 8x8 TINY prior."""
  kind = draw(st.sampled_from(["rank", "size", "dtype", "nonfinite"]))
  if kind == "rank":                  # rank 2 is flat measurements [N, K]
    ndim = draw(st.sampled_from([0, 1, 3, 5]))
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=ndim,
                                max_size=ndim)))
    return np.zeros(shape, np.float32)
  if kind == "size":
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    if h == w and 8 % h == 0:         # 8x8, or 8/s x 8/s ('downsample')
      h += 3 if h == 8 else 5
    return np.zeros((2, h, w, 1), np.float32)
  if kind == "dtype":
    dtype = draw(BAD_DTYPES)
    return np.zeros((2, 8, 8, 1), dtype)
  y = np.zeros((2, 8, 8, 1), np.float32)
  y.flat[draw(st.integers(0, y.size - 1))] = draw(
      st.sampled_from([np.nan, np.inf, -np.inf]))
  return y


@pytest.fixture(scope="module")
def tiny_prior(tiny_run):
  return tiny_run[1]


@SETTINGS
@given(bad_observations(), st.integers(-2, 2))
def test_bad_observations_never_reach_jit(tiny_prior, y, num_sources):
  before = (runner.run_chunk._cache_size(), solver.init_state._cache_size())
  with pytest.raises(ValueError):
    solver.solve(y, tiny_prior, num_sources=num_sources)
  assert (runner.run_chunk._cache_size(),
          solver.init_state._cache_size()) == before
