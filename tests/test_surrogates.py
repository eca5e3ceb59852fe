import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax.models import surrogates
from blindinv_jax.models.surrogates import effective_kernel, make_surrogate


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


@pytest.mark.parametrize("size,layer,effective", [
    (None, 5, 9), (9, 5, 9), (1, 1, 1), (13, 7, 13), (20, 11, 21)])
def test_kernel_size_sets_the_effective_kernel(size, layer, effective):
  """kernel_size K: each conv is K//2+1 wide, the effective kernel the odd
  size >= K; None is today's surrogate exactly (two 5x5 layers)."""
  for fam in surrogates.KERNEL_FAMILIES:
    m = surrogates.make_surrogate(fam, 1, size)
    assert m.kernel_size == layer
    if size in (None, 9):
      assert m == surrogates.ALL_FAMILIES[fam](
          out_channels=1)
      assert repr(m) == repr(surrogates.make_surrogate(fam, 1))
  m = surrogates.make_surrogate("conv", 2, size)
  params = m.init(jax.random.key(0), jnp.ones((1, 8, 8, 3)))
  assert surrogates.effective_kernel(params).shape == (effective, effective,
                                                       3, 2)
  mixing = surrogates.make_surrogate("mixing", 1, size)   # no kernel: as is
  assert mixing == surrogates.MixingSurrogate(out_channels=1)


def test_kernel_size_is_refused_where_there_is_no_kernel():
  with pytest.raises(ValueError, match="'mixing' is per-pixel and has no "
                     "kernel; leave kernel_size unset"):
    surrogates.check_kernel_size("mixing", 20)
  with pytest.raises(ValueError, match="a surrogate module has its own"):
    surrogates.make_surrogate(surrogates.MixingSurrogate(1), 1, 20)
  with pytest.raises(ValueError, match="must be a positive int, got 0"):
    surrogates.make_surrogate("conv", 1, 0)
  for ok in ("auto", "conv", "conv_mlp"):
    surrogates.check_kernel_size(ok, 20)
  surrogates.check_kernel_size("mixing", None)


def test_a_wider_kernel_fits_a_blur_wider_than_9x9():
  """A 15x15 blur of noise: kernel_size=15 fits it far better than the
  default 9x9 surrogate can (least squares on the interior, converged; the
  L1 error compared: 0.010 against 0.025 when written)."""
  import optax

  from blindinv_jax import operators as ops
  x = jax.random.uniform(jax.random.key(0), (4, 32, 32, 1), minval=-1.0,
                         maxval=1.0)
  y = ops.blur(x, jnp.ones((15, 15)) / 225.0, boundary="zero")

  def fit_error(kernel_size):
    m = surrogates.make_surrogate("conv", 1, kernel_size)
    params = m.init(jax.random.key(1), x)
    tx = optax.adam(1e-2)
    err = lambda p: (m.apply(p, x) - y)[:, 8:-8, 8:-8]
    loss = lambda p: jnp.mean(jnp.square(err(p)))

    def body(carry, _):
      p, opt = carry
      upd, opt = tx.update(jax.grad(loss)(p), opt, p)
      return (optax.apply_updates(p, upd), opt), None
    (params, _), _ = jax.lax.scan(body, (params, tx.init(params)), None,
                                  length=400)
    return float(jnp.mean(jnp.abs(err(params))))
  narrow, wide = fit_error(None), fit_error(15)
  assert wide < 0.6 * narrow, (narrow, wide)


@pytest.mark.parametrize("family,boundary", [("conv", "zero"),
                                             ("conv_scene", "scene")])
def test_each_conv_family_draws_its_border_convention(family, boundary):
  """With a delta in the first layer and a 5x5 kernel in the second, the
  "conv" family (zero padding) is operators.blur(..., "zero") and
  "conv_scene" (edge-padded sources) is operators.blur(..., "scene") on
  the whole image, border included: each draws the border of its
  convention, and only that one."""
  from blindinv_jax import operators as ops
  x = jax.random.uniform(jax.random.key(3), (2, 12, 10, 1), minval=-1,
                         maxval=1)
  k = jax.random.uniform(jax.random.key(4), (5, 5))
  m = surrogates.make_surrogate(family, 1)
  p = m.init(jax.random.key(0), x)
  w1 = jnp.zeros((5, 5, 1, 16)).at[2, 2, 0, 0].set(1.0)
  w2 = jnp.zeros((5, 5, 16, 1)).at[:, :, 0, 0].set(k)
  p = jax.tree_util.tree_map(jnp.zeros_like, p)
  p["params"]["conv1"]["kernel"], p["params"]["conv2"]["kernel"] = w1, w2
  np.testing.assert_allclose(m.apply(p, x), ops.blur(x, k, boundary),
                             atol=1e-5)
  other = "scene" if boundary == "zero" else "zero"
  assert np.abs(np.asarray(m.apply(p, x) - ops.blur(x, k, other))).max() > 0.1
  if family == "conv_scene":
    assert "bias" not in p["params"]["conv1"]        # the gain is pinned


def _delta_params(shift):
  """conv/conv_scene params whose effective kernel is a delta moved by
  ``shift`` (rows, cols) from the centre of its 9x9."""
  w1 = np.zeros((5, 5, 1, 16), np.float32)
  w1[2, 2, 0, 0] = 1.0
  w2 = np.zeros((5, 5, 16, 1), np.float32)
  w2[2 + shift[0], 2 + shift[1], 0, 0] = 1.0
  return {"params": {"conv1": {"kernel": jnp.asarray(w1)},
                     "conv2": {"kernel": jnp.asarray(w2)}}}


def test_kernel_off_centre_measures_the_shift_of_the_energy():
  for shift, want in (((0, 0), 0.0), ((1, 0), 1.0), ((-1, 2), np.hypot(1, 2))):
    got = float(surrogates.kernel_off_centre(_delta_params(shift)))
    assert got == pytest.approx(want, abs=1e-6), shift
  g = np.asarray(surrogates.effective_kernel(_delta_params((0, 0))))
  assert g[4, 4, 0, 0] == 1.0 and g.sum() == 1.0         # a centred delta


def test_select_centred_keeps_the_best_fit_among_centred_kernels(tiny_run):
  from blindinv_jax import operators as ops, solver
  _, prior = tiny_run
  x = prior.generate(prior.sample_latents(jax.random.key(5), 4))
  y = ops.blur(x, ops.gaussian_kernel(3, 1.0))
  cfg = solver.SolverConfig(outer_steps=2, surrogate_steps=5, latent_steps=5,
                            alpha=0.0, unroll=1, restarts=3)
  fit = solver.solve(y, prior, surrogate="conv_scene", config=cfg)
  cen = solver.solve(y, prior, surrogate="conv_scene",
                     config=cfg.replace(select="centred"))
  for a, b in zip(jax.tree_util.tree_leaves(                # same solve
      (fit.state.z, fit.state.surrogate_params)), jax.tree_util.tree_leaves(
          (cen.state.z, cen.state.surrogate_params))):
    np.testing.assert_array_equal(a, b)
  off = jax.vmap(surrogates.kernel_off_centre)(cen.state.surrogate_params)
  err = jnp.stack([jnp.sum(jnp.abs(cen.surrogate.apply(
      jax.tree_util.tree_map(lambda a, r=r: a[r], cen.state.surrogate_params),
      prior.generate(cen.state.z[r])[:, 0]) - y)) for r in range(3)])
  eligible = off <= off.min() + solver.CENTRE_TOLERANCE
  want = int(jnp.argmin(jnp.where(eligible, err, jnp.inf)))
  assert int(cen.best_restart) == want      # the best fit among the centred
  np.testing.assert_allclose(cen.sources, prior.generate(cen.state.z[want]),
                             atol=1e-6)
  far = solver.solve(y, prior, surrogate="conv_scene", config=cfg.replace(
      select="centred"), key=jax.random.key(7))
  assert bool(jnp.all(jax.vmap(surrogates.kernel_off_centre)(
      far.state.surrogate_params)[far.best_restart] <= jax.vmap(
          surrogates.kernel_off_centre)(far.state.surrogate_params).min() +
      solver.CENTRE_TOLERANCE))
  with pytest.raises(ValueError, match="needs a linear conv surrogate"):
    solver.solve(y, prior, surrogate="mixing",
                 config=cfg.replace(select="centred"))
  with pytest.raises(ValueError, match="select must be one of"):
    cfg.replace(select="middle").validate()


@pytest.mark.parametrize("family,boundary", [
    ("conv_scene", "scene"), ("conv_reflect", "reflect"),
    ("conv_circular", "circular")])
def test_border_families_are_the_blur_of_their_kernel(family, boundary):
  """Each border family is ``operators.blur`` with its effective kernel,
  the scene continuing past the frame as that family draws it."""
  from blindinv_jax import operators as ops
  x = jax.random.normal(jax.random.key(0), (2, 12, 12, 1))
  m = make_surrogate(family, 1)
  p = m.init(jax.random.key(1), x)
  k = effective_kernel(p)[:, :, 0, 0]
  np.testing.assert_allclose(m.apply(p, x), ops.blur(x, k, boundary),
                             atol=1e-5)
