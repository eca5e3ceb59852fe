"""DCGAN generator and discriminator (Flax Linen, NHWC).

The architecture is data: a frozen :class:`DCGANConfig` that a checkpoint stores
as a plain dict, so a saved prior can be rebuilt without any other argument.

Presets:
  * ``MNIST28``  28x28x1, latent 100, six layers in each of G and D (paper 3.2).
  * ``CELEBA64`` 64x64x3, latent 100, the DCGAN of Radford et al. (2016):
    G projects z to 4x4x1024 then four 5x5 stride-2 transposed convolutions
    (512, 256, 128, 3); D mirrors it with 5x5 stride-2 convolutions
    (64, 128, 256, 512) and one logit.
  * ``TINY``     8x8x1, latent 8, for tests only.
  * the family ``dcgan{28,32,64}_{gray,rgb}`` (:func:`dcgan_for`), sized
    for a few thousand images on a CPU; :func:`preset_for_shape` picks one
    for a data set's image shape.

Latents are uniform in ``[-1, 1]`` (:func:`sample_latents`).
"""
from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from blindinv_jax import backend
from blindinv_jax.models.layers import Conv, PhaseConvTranspose

Stage = Tuple[int, int, int]  # (features, kernel, stride)


@dataclasses.dataclass(frozen=True)
class DCGANConfig:
  """Architecture of a DCGAN prior.

  Attributes:
    name: preset name, stored in checkpoints.
    image_shape: (H, W, C) of the generated images.
    latent_dim: dimension of z.
    g_base: (h, w, features) of the tensor the first Dense layer projects z to.
    g_stages: generator layers after the projection, each (features, kernel,
      stride); stride 2 is a transposed convolution that doubles H and W. The
      last stage outputs the image (``tanh``, no BatchNorm).
    d_stages: discriminator convolutions, each (features, kernel, stride); the
      first has no BatchNorm, as in DCGAN.
    d_dense: hidden Dense widths before the final logit.
    bn_momentum: BatchNorm running-average momentum.
    leak: LeakyReLU slope in D.
  """
  name: str
  image_shape: Tuple[int, int, int]
  latent_dim: int
  g_base: Tuple[int, int, int]
  g_stages: Tuple[Stage, ...]
  d_stages: Tuple[Stage, ...]
  d_dense: Tuple[int, ...] = ()
  bn_momentum: float = 0.9
  leak: float = 0.2

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict) -> "DCGANConfig":
    return config_from_dict(cls, d)

  def __post_init__(self):
    check_upsampling(self.name, self.image_shape, self.g_base, self.g_stages)


def config_from_dict(cls, d: dict):
  """A frozen architecture dataclass from a checkpoint's dict (lists back to
  tuples); unknown fields mean a newer writer."""
  unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
  if unknown:
    raise ValueError(f"Unknown {cls.__name__} fields {sorted(unknown)}; the "
                     "checkpoint was written by a newer blindinv-jax.")
  tup = lambda v: (tuple(tup(x) for x in v) if isinstance(v, (list, tuple))
                   else v)
  return cls(**{k: tup(v) for k, v in d.items()})


def depth_shapes(base, stages) -> Tuple[Tuple[int, int, int], ...]:
  """The ``(h, w, features)`` of every depth of a generator or decoder made
  of a base tensor ``base`` and ``stages`` (depth 0: the base; depth i: the
  output of stage i; the last: the image)."""
  h, w, f = base
  shapes = [(h, w, f)]
  for feat, _, s in stages:
    h, w = h * s, w * s
    shapes.append((h, w, feat))
  return tuple(shapes)


def check_upsampling(name: str, image_shape, base, stages) -> None:
  """The generator's (or decoder's) base and strides give ``image_shape``
  and its last stage outputs the image's channels."""
  h, w, _ = depth_shapes(base, stages)[-1]
  if (h, w) != tuple(image_shape[:2]):
    raise ValueError(f"{name}: base {base} and the strides of the stages "
                     f"give {h}x{w}, not {tuple(image_shape[:2])}.")
  if stages[-1][0] != image_shape[2]:
    raise ValueError(f"{name}: the last stage must output {image_shape[2]} "
                     "channels.")


MNIST28 = DCGANConfig(
    name="mnist28",
    image_shape=(28, 28, 1),
    latent_dim=100,
    g_base=(7, 7, 128),
    g_stages=((64, 4, 2), (32, 3, 1), (32, 4, 2), (16, 3, 1), (1, 3, 1)),
    d_stages=((32, 4, 2), (64, 4, 2), (128, 3, 1), (128, 3, 2)),
    d_dense=(128,),
)

CELEBA64 = DCGANConfig(
    name="celeba64",
    image_shape=(64, 64, 3),
    latent_dim=100,
    g_base=(4, 4, 1024),
    g_stages=((512, 5, 2), (256, 5, 2), (128, 5, 2), (3, 5, 2)),
    d_stages=((64, 5, 2), (128, 5, 2), (256, 5, 2), (512, 5, 2)),
    d_dense=(),
)

TINY = DCGANConfig(
    name="tiny",
    image_shape=(8, 8, 1),
    latent_dim=8,
    g_base=(2, 2, 16),
    g_stages=((8, 4, 2), (1, 4, 2)),
    d_stages=((8, 4, 2), (16, 4, 2)),
    d_dense=(16,),
)



def dcgan_for(size: int, channels: int) -> DCGANConfig:
  """The family preset ``dcgan<size>_<gray|rgb>`` for ``size`` in 28, 32,
  64 and 1 or 3 channels: a DCGAN sized for a few thousand images on a CPU
  (latent 100; G doubles the resolution per transposed conv from 7x7 or
  4x4, D halves it per strided conv; no hidden Dense layer in D)."""
  if size not in FAMILY_SIZES or channels not in (1, 3):
    raise ValueError(f"the DCGAN family has sizes {FAMILY_SIZES} and 1 or 3 "
                     f"channels, not {size}x{size}x{channels}.")
  ups = {28: (7, 7, 128), 32: (4, 4, 256), 64: (4, 4, 256)}[size]
  g = {28: ((64, 4, 2), (32, 4, 2)),
       32: ((128, 4, 2), (64, 4, 2), (32, 4, 2)),
       64: ((128, 4, 2), (64, 4, 2), (32, 4, 2), (16, 4, 2))}[size]
  d = {28: ((32, 4, 2), (64, 4, 2), (128, 3, 2)),
       32: ((32, 4, 2), (64, 4, 2), (128, 4, 2)),
       64: ((16, 4, 2), (32, 4, 2), (64, 4, 2), (128, 4, 2))}[size]
  return DCGANConfig(name=f"dcgan{size}_{'gray' if channels == 1 else 'rgb'}",
                     image_shape=(size, size, channels), latent_dim=100,
                     g_base=ups, g_stages=(*g, (channels, 3, 1)), d_stages=d)


FAMILY_SIZES = (28, 32, 64)
FAMILY = {c.name: c for c in (dcgan_for(s, ch) for s in FAMILY_SIZES
                              for ch in (1, 3))}
PRESETS = {c.name: c for c in (MNIST28, CELEBA64, TINY)}
PRESETS.update(FAMILY)


def preset_for_shape(height: int, width: int, channels: int) -> DCGANConfig:
  """The family preset for images of this shape: the smallest family size
  at least ``min(height, width)`` (else the largest), 1 or 3 channels."""
  side = min(height, width)
  size = next((s for s in FAMILY_SIZES if s >= side), FAMILY_SIZES[-1])
  return dcgan_for(size, 1 if channels == 1 else 3)


def get_preset(name: str) -> DCGANConfig:
  try:
    return PRESETS[name.lower()]
  except KeyError:
    raise ValueError(f"Unknown model preset {name!r}; choose one of "
                     f"{sorted(PRESETS)}.") from None


class Generator(nn.Module):
  """z: [B, latent_dim] -> images [B, H, W, C] in [-1, 1].

  ``conv_transpose`` picks how the stride-2 layers are computed, with the same
  parameters and output: ``"phase"`` (:class:`PhaseConvTranspose`, fast
  weight gradients on CPU) or ``"lax"`` (``nn.ConvTranspose``).

  Depths (the intermediate-layer hook): depth 0 is the output of the Dense
  projection (``g_base``, after BatchNorm and ReLU), depth i that of stage
  i, depth ``len(g_stages)`` the image. ``start`` (-1: the input is z, else
  the input is the output of depth ``start``) and ``stop`` (None: the image)
  run only the layers in between: ``G(z) == G(G(z, stop=d), start=d)``.
  """
  config: DCGANConfig
  conv_transpose: str = "phase"

  @nn.compact
  def __call__(self, z: jax.Array, train: bool = False, start: int = -1,
               stop: int | None = None) -> jax.Array:
    cfg = self.config
    stop = len(cfg.g_stages) if stop is None else stop
    norm = lambda i: nn.BatchNorm(use_running_average=not train,
                                  momentum=cfg.bn_momentum, name=f"bn{i}")
    up = {"phase": PhaseConvTranspose,
          "lax": partial(nn.ConvTranspose, padding="SAME")}[self.conv_transpose]
    x = z
    if start < 0 <= stop:
      h, w, f = cfg.g_base
      x = nn.Dense(features=h * w * f, use_bias=False, name="dense")(z)
      x = nn.relu(norm(0)(x.reshape(z.shape[0], h, w, f)))
    for i, (feat, k, s) in enumerate(cfg.g_stages, start=1):
      if not start < i <= stop:
        continue
      last = i == len(cfg.g_stages)
      if s == 1:
        x = Conv(features=feat, kernel_size=(k, k), use_bias=last,
                 name=f"conv{i}")(x)
      else:
        x = up(features=feat, kernel_size=(k, k), strides=(s, s),
               use_bias=last, name=f"conv{i}")(x)
      x = jnp.tanh(x) if last else nn.relu(norm(i)(x))
    return x


class Discriminator(nn.Module):
  """x: [B, H, W, C] in [-1, 1] -> logits [B] (real > 0)."""
  config: DCGANConfig

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    cfg = self.config
    for i, (feat, k, s) in enumerate(cfg.d_stages):
      x = Conv(features=feat, kernel_size=(k, k), strides=(s, s),
               use_bias=i == 0, name=f"Conv_{i}")(x)
      if i > 0:
        x = nn.BatchNorm(use_running_average=not train,
                         momentum=cfg.bn_momentum)(x)
      x = nn.leaky_relu(x, cfg.leak)
    x = x.reshape(x.shape[0], -1)
    for feat in cfg.d_dense:
      x = nn.leaky_relu(nn.Dense(features=feat)(x), cfg.leak)
    return nn.Dense(features=1)(x)[:, 0]


def sample_latents(key: jax.Array, shape: Sequence[int] | int,
                   latent_dim: int) -> jax.Array:
  """Latents uniform in [-1, 1]: [*shape, latent_dim]."""
  shape = (shape,) if isinstance(shape, int) else tuple(shape)
  return jax.random.uniform(key, (*shape, latent_dim), minval=-1.0, maxval=1.0)


def init_variables_fn(config: DCGANConfig, key: jax.Array) -> Tuple[Any, Any]:
  """Initial (generator, discriminator) variables of a preset (not jitted)."""
  kg, kd = jax.random.split(key)
  z = jnp.zeros((1, config.latent_dim), jnp.float32)
  x = jnp.zeros((1, *config.image_shape), jnp.float32)
  return (Generator(config).init(kg, z, train=False),
          Discriminator(config).init(kd, x, train=False))


init_variables = backend.jit_init(init_variables_fn, static_argnums=0)
init_variables.__doc__ = "Initial (G, D) variables of a preset, jitted."


def count_params(variables: Any) -> int:
  """Number of trainable parameters in a variables dict."""
  params = variables["params"] if "params" in variables else variables
  return sum(int(p.size) for p in jax.tree_util.tree_leaves(params))
