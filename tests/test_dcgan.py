import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax.models import dcgan
from blindinv_jax.models.layers import PhaseConvTranspose

# Parameter counts per preset (a change of architecture must be deliberate).
PARAM_COUNTS = {"mnist28": (798_385, 517_537),
                "celeba64": (18_855_043, 4_315_649),
                "tiny": (2_737, 3_273),
                "dcgan28_gray": (791_777, 109_473),
                "dcgan28_rgb": (792_355, 110_497),
                "dcgan32_gray": (1_098_977, 166_817),
                "dcgan32_rgb": (1_099_555, 167_841),
                "dcgan64_gray": (1_107_057, 174_801),
                "dcgan64_rgb": (1_107_347, 175_313)}


@pytest.mark.parametrize("name", sorted(dcgan.PRESETS))
def test_preset_shapes_and_parameter_counts(name):
  cfg = dcgan.get_preset(name)
  g, d = jax.eval_shape(lambda k: dcgan.init_variables_fn(cfg, k),
                        jax.random.key(0))
  assert (dcgan.count_params(g), dcgan.count_params(d)) == PARAM_COUNTS[name]
  z = jax.ShapeDtypeStruct((3, cfg.latent_dim), jnp.float32)
  out = jax.eval_shape(lambda g, z: dcgan.Generator(cfg).apply(g, z), g, z)
  assert out.shape == (3, *cfg.image_shape)
  x = jax.ShapeDtypeStruct((3, *cfg.image_shape), jnp.float32)
  logits = jax.eval_shape(lambda d, x: dcgan.Discriminator(cfg).apply(d, x),
                          d, x)
  assert logits.shape == (3,)


def test_paper_presets():
  assert dcgan.MNIST28.latent_dim == dcgan.CELEBA64.latent_dim == 100
  # Six layers in each of G and D for MNIST (paper 3.2): projection + stages,
  # convolutions + dense layers + logit.
  assert 1 + len(dcgan.MNIST28.g_stages) == 6
  assert len(dcgan.MNIST28.d_stages) + len(dcgan.MNIST28.d_dense) + 1 == 6
  # Radford et al.: 4x4x1024 projection, 5x5 stride-2 layers 512-256-128-3.
  assert dcgan.CELEBA64.g_base == (4, 4, 1024)
  assert [s[0] for s in dcgan.CELEBA64.g_stages] == [512, 256, 128, 3]
  assert [s[0] for s in dcgan.CELEBA64.d_stages] == [64, 128, 256, 512]


def test_tiny_generator_range_and_batchnorm_modes():
  cfg = dcgan.TINY
  g, _ = dcgan.init_variables(cfg, jax.random.key(0))
  z = dcgan.sample_latents(jax.random.key(1), 5, cfg.latent_dim)
  assert float(z.min()) >= -1 and float(z.max()) <= 1
  gen = dcgan.Generator(cfg)
  x = gen.apply(g, z)
  assert x.shape == (5, 8, 8, 1) and float(jnp.abs(x).max()) <= 1.0
  x_train, mut = gen.apply(g, z, train=True, mutable=["batch_stats"])
  assert not np.allclose(x_train, x)          # batch statistics differ
  moved = jax.tree_util.tree_map(lambda a, b: not np.allclose(a, b),
                                 mut["batch_stats"], g["batch_stats"])
  assert all(jax.tree_util.tree_leaves(moved))


def test_config_roundtrip_and_validation():
  for cfg in dcgan.PRESETS.values():
    assert dcgan.DCGANConfig.from_dict(cfg.to_dict()) == cfg
  with pytest.raises(ValueError, match="give 16x16"):
    dcgan.DCGANConfig(name="bad", image_shape=(8, 8, 1), latent_dim=4,
                      g_base=(4, 4, 8), g_stages=((1, 4, 2), (1, 3, 2)),
                      d_stages=((4, 3, 2),))
  with pytest.raises(ValueError, match="Unknown model preset"):
    dcgan.get_preset("mnist64")
  with pytest.raises(ValueError, match="newer blindinv-jax"):
    dcgan.DCGANConfig.from_dict({**dcgan.TINY.to_dict(), "attention": True})


@pytest.mark.parametrize("k,s,hw", [(4, 2, (7, 7)), (5, 2, (4, 5)),
                                    (3, 2, (5, 3)), (5, 1, (6, 6)),
                                    (3, 3, (4, 2))])
def test_phase_conv_transpose_equals_flax_conv_transpose(k, s, hw):
  x = jax.random.normal(jax.random.key(1), (2, *hw, 5))
  ref = nn.ConvTranspose(features=6, kernel_size=(k, k), strides=(s, s),
                         padding="SAME")
  params = ref.init(jax.random.key(0), x)
  mine = PhaseConvTranspose(features=6, kernel_size=(k, k), strides=(s, s))
  np.testing.assert_allclose(mine.apply(params, x), ref.apply(params, x),
                             atol=1e-5)
  g_ref = jax.grad(lambda p: jnp.sum(ref.apply(p, x) ** 2))(params)
  g_mine = jax.grad(lambda p: jnp.sum(mine.apply(p, x) ** 2))(params)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4),
      g_mine, g_ref)


def test_generator_lowerings_agree():
  cfg = dcgan.MNIST28
  g, _ = dcgan.init_variables(cfg, jax.random.key(0))
  z = dcgan.sample_latents(jax.random.key(2), 4, cfg.latent_dim)
  a = dcgan.Generator(cfg).apply(g, z)
  b = dcgan.Generator(cfg, conv_transpose="lax").apply(g, z)
  np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("k,s,hw", [(3, 1, (7, 7)), (4, 2, (28, 28)),
                                    (3, 2, (7, 7)), (5, 2, (9, 6)),
                                    (3, 3, (10, 11))])
def test_layers_conv_equals_flax_conv_with_gradients(k, s, hw):
  from blindinv_jax.models.layers import Conv
  x = jax.random.normal(jax.random.key(1), (2, *hw, 3))
  ref = nn.Conv(features=4, kernel_size=(k, k), strides=(s, s), padding="SAME")
  params = ref.init(jax.random.key(0), x)
  mine = Conv(features=4, kernel_size=(k, k), strides=(s, s))
  np.testing.assert_allclose(mine.apply(params, x), ref.apply(params, x),
                             atol=1e-5)
  loss = lambda m: lambda p, x: jnp.sum(jnp.sin(m.apply(p, x)))
  g_ref = jax.grad(loss(ref), argnums=(0, 1))(params, x)
  g_mine = jax.grad(loss(mine), argnums=(0, 1))(params, x)
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4),
      g_mine, g_ref)


@pytest.mark.parametrize("cin,cout,k", [(1, 16, 5), (16, 1, 5), (8, 6, 3),
                                        (3, 5, 2)])
def test_canonical_weight_gradient_equals_autodiff(cin, cout, k):
  """layers._conv_weight_grad (thin layers) and autodiff's weight gradient
  (wide layers) agree, and Conv's gradient equals nn.Conv's on both paths."""
  from blindinv_jax.models import layers
  x = jax.random.normal(jax.random.key(1), (3, 9, 8, cin))
  pad = ((k // 2, (k - 1) // 2), ((k - 1) // 2, k // 2))
  w = jax.random.normal(jax.random.key(2), (k, k, cin, cout))
  y, vjp = jax.vjp(lambda w: layers._conv(x, w, pad), w)
  g = jax.random.normal(jax.random.key(3), y.shape)
  np.testing.assert_allclose(layers._conv_weight_grad(x, g, pad),
                             vjp(g)[0], rtol=1e-5, atol=1e-4)
  ref = nn.Conv(features=cout, kernel_size=(k, k), padding="SAME")
  params = ref.init(jax.random.key(0), x)
  mine = layers.Conv(features=cout, kernel_size=(k, k))
  loss = lambda m: lambda p: jnp.sum(jnp.sin(m.apply(p, x)))
  jax.tree_util.tree_map(
      lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4),
      jax.grad(loss(mine))(params), jax.grad(loss(ref))(params))
