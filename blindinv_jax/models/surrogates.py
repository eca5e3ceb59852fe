"""Shallow surrogates F_hat of the unknown forward process (paper 3.1, 3.2).

Each maps the stacked sources ``[B, H, W, S*C]`` to an observation
``[B, H, W, C_obs]`` (:data:`FAMILIES`, :data:`BORDER_FAMILIES`), or to
observations of another kind (:data:`SHAPE_FAMILIES`: a mask on the same
grid, a smaller grid, flat measurements).

* :class:`LinearConvSurrogate`: conv 5x5 to 16 filters, then conv 5x5 to
  ``C_obs``, no non-linearity (paper 3.1: blur and edge maps).
* :class:`SceneConvSurrogate` (``"conv_scene"``): the same two
  convolutions, without biases, on sources that continue past the frame
  with their edge values: for observations of a real scene, which have no
  frame (``operators.blur(..., boundary="scene")``).
* :class:`MixingSurrogate`: per-pixel Dense 16, ReLU, Dense ``C_obs``
  (paper 3.2: non-linear mixtures).
* :class:`ConvMLPSurrogate`: the two convolutions of the linear surrogate,
  then a per-pixel ReLU and Dense ``C_obs``: a filter followed by a
  non-linearity (``|conv(X)|``, a saturating sensor). Not in the paper; a
  candidate of ``surrogate="auto"`` (:mod:`blindinv_jax.auto`).

* :class:`MaskSurrogate` (``"mask"``): a per-pixel gain and offset shared
  by all observations (an unknown mask, a vignette, dead pixels);
  :class:`ConvMaskSurrogate` (``"conv_mask"``): a filter, then a mask.
* :class:`DownsampleSurrogate` (``"downsample"``): a filter, then a
  stride-s convolution (blind super-resolution, ``[B, H/s, W/s, C_obs]``).
* :class:`DenseSurrogate` (``"dense"``): a linear map of the flattened
  sources to K measurements (compressed sensing, ``[B, K]``).

:func:`effective_kernel` composes the two convolutions of the linear
surrogate into the single ``(2k-1) x (2k-1)`` kernel they apply, so a user can
read the estimated blur or edge filter. Two 5x5 layers give 9x9; a larger
process (the paper's CelebA blur is 20x20) needs ``make_surrogate(...,
kernel_size=K)`` (``blindinv solve --kernel-size K``).
"""
from __future__ import annotations

from typing import Optional, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax.models.layers import Conv


class LinearConvSurrogate(nn.Module):
  """Two linear convolutions: ``[B, H, W, S*C] -> [B, H, W, out_channels]``.

  "SAME" zero padding, cross-correlation (``nn.Conv`` semantics).
  """
  out_channels: int
  features: int = 16
  kernel_size: int = 5
  use_bias: bool = True

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = (self.kernel_size, self.kernel_size)
    x = Conv(features=self.features, kernel_size=k, use_bias=self.use_bias,
             name="conv1")(x)
    return Conv(features=self.out_channels, kernel_size=k,
                use_bias=self.use_bias, name="conv2")(x)


class SceneConvSurrogate(LinearConvSurrogate):
  """The linear conv surrogate for a scene that continues past the frame:
  ``[B, H, W, S*C] -> [B, H, W, out_channels]``.

  The sources are padded with their edge values by the two convolutions'
  reach (``2 * (kernel_size - 1)`` summed over both layers, i.e.
  ``kernel_size - 1`` per side), filtered, and cropped back: the surrogate
  draws no frame of its own, as a camera's blur does not. No biases by
  default: a constant background then comes out as the kernel's sum times
  itself, which pins the gain that a frame pins for the ``conv`` family.
  Same parameters as :class:`LinearConvSurrogate` (:func:`effective_kernel`
  reads them).
  """
  use_bias: bool = False
  PAD = "edge"                  # jnp.pad's mode (a class constant, no field)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    m = self.kernel_size - 1
    xp = jnp.pad(x, ((0, 0), (m, m), (m, m), (0, 0)), mode=self.PAD)
    return super().__call__(xp)[:, m:-m, m:-m, :]   # the same two convs


class ReflectConvSurrogate(SceneConvSurrogate):
  """:class:`SceneConvSurrogate` with the sources mirrored past the frame
  (``jnp.pad``'s ``"reflect"``, as ``operators.blur(..., "reflect")``
  simulates): ``[B, H, W, S*C] -> [B, H, W, out_channels]``."""
  PAD = "reflect"


class CircularConvSurrogate(SceneConvSurrogate):
  """:class:`SceneConvSurrogate` with the sources wrapped around the frame
  (periodic, as an FFT convolution and ``operators.blur(..., "circular")``
  make them): ``[B, H, W, S*C] -> [B, H, W, out_channels]``."""
  PAD = "wrap"


class MixingSurrogate(nn.Module):
  """Per-pixel MLP: ``[B, H, W, S*C] -> [B, H, W, out_channels]``."""
  out_channels: int
  features: int = 16

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    x = nn.relu(nn.Dense(features=self.features, name="dense1")(x))
    return nn.Dense(features=self.out_channels, name="dense2")(x)


class ConvMLPSurrogate(nn.Module):
  """Two linear 5x5 convolutions to ``features`` channels, ReLU, per-pixel
  Dense: ``[B, H, W, S*C] -> [B, H, W, out_channels]``."""
  out_channels: int
  features: int = 16
  kernel_size: int = 5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = (self.kernel_size, self.kernel_size)
    x = Conv(features=self.features, kernel_size=k, name="conv1")(x)
    x = Conv(features=self.features, kernel_size=k, name="conv2")(x)
    return nn.Dense(features=self.out_channels, name="dense")(nn.relu(x))


def _mask_params(module: nn.Module, shape):
  """The per-pixel ``gain`` (ones: nothing lost) and ``offset`` (zeros) of
  the mask families, ``shape`` = ``[H, W, C]``."""
  return (module.param("gain", nn.initializers.ones, tuple(shape)),
          module.param("offset", nn.initializers.zeros, tuple(shape)))


class MaskSurrogate(nn.Module):
  """A per-pixel gain and offset shared by every observation:
  ``[B, H, W, S*C] -> [B, H, W, out_channels]``.

  ``y = gain * mean_i(x_i) + offset`` per pixel and channel, with
  ``gain``, ``offset [H, W, out_channels]`` (the sources' channels are
  averaged when there are several): what a fixed unknown mask, a vignette
  or dead sensor pixels do. Starts at the identity (gain 1, offset 0); a
  lost pixel is learned as gain 0 and the value it reads as offset.
  :func:`learned_mask` reads the gain.
  """
  out_channels: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    gain, offset = _mask_params(self, x.shape[-3:-1] + (self.out_channels,))
    return gain * jnp.mean(x, axis=-1, keepdims=True) + offset


class ConvMaskSurrogate(SceneConvSurrogate):
  """:class:`SceneConvSurrogate`'s linear filter, then a per-pixel gain and
  offset (:class:`MaskSurrogate`'s): ``[B, H, W, S*C] -> [B, H, W,
  out_channels]``; a blur or a filter followed by a mask."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = super().__call__(x)
    gain, offset = _mask_params(self, y.shape[-3:])
    return gain * y + offset


class DownsampleSurrogate(SceneConvSurrogate):
  """Blind super-resolution's surrogate: :class:`SceneConvSurrogate`'s
  linear filter, then a stride-``factor`` convolution per output channel
  (a ``factor x factor`` kernel ``down``, starting as a delta on its first
  tap: keep every ``factor``-th pixel): ``[B, H, W, S*C] -> [B, H/factor,
  W/factor, out_channels]``. :func:`effective_kernel` composes all three
  layers on the prior's grid.
  """
  factor: int = 2

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    y = super().__call__(x)
    s, c = self.factor, self.out_channels

    def delta(key, shape, dtype=jnp.float32):
      return jnp.zeros(shape, dtype).at[0, 0].set(1.0)
    down = self.param("down", delta, (s, s, 1, c))
    return jax.lax.conv_general_dilated(
        y, down, window_strides=(s, s), padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c)


class DenseSurrogate(nn.Module):
  """Compressed measurements with an unknown matrix: the flattened sources
  ``[B, H*W*S*C]`` times a learned ``A [H*W*S*C, out_channels]`` (no
  bias): ``[B, H, W, S*C] -> [B, K]`` with ``K = out_channels``. It has
  ``H*W*S*C*K`` unknowns and gets K equations per observation, so it needs
  many observations (minibatch mode: ``SolverConfig.batch_size``)."""
  out_channels: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    return nn.Dense(self.out_channels, use_bias=False, name="dense")(
        x.reshape(x.shape[0], -1))


#: The surrogate families by name, simplest first (``surrogate="auto"``
#: prefers the earlier of two that fit held-out pixels equally well).
FAMILIES = {"conv": LinearConvSurrogate, "conv_scene": SceneConvSurrogate,
            "mixing": MixingSurrogate, "conv_mlp": ConvMLPSurrogate}

#: The linear conv surrogate for other conventions of what lies past the
#: frame (named, not screened by ``surrogate="auto"``).
BORDER_FAMILIES = {"conv_reflect": ReflectConvSurrogate,
                   "conv_circular": CircularConvSurrogate}

#: Families for observations that are not a plain filter of the sources on
#: their grid: a mask on the same grid, a smaller grid, flat measurements
#: ``[N, K]`` (not screened by ``surrogate="auto"`` on the prior's grid).
SHAPE_FAMILIES = {"mask": MaskSurrogate, "conv_mask": ConvMaskSurrogate,
                  "downsample": DownsampleSurrogate, "dense": DenseSurrogate}


#: Every family by name.
ALL_FAMILIES = {**FAMILIES, **BORDER_FAMILIES, **SHAPE_FAMILIES}

#: The families with a kernel (two convolutions); "mixing" is per-pixel.
KERNEL_FAMILIES = ("conv", "conv_scene", "conv_mlp", "conv_mask",
                   "downsample", "conv_reflect", "conv_circular")
#: The effective kernel the conv families cover by default: two 5x5 layers.
DEFAULT_KERNEL_SIZE = 9


def layer_size(kernel_size: int) -> int:
  """The width ``k`` of each of the two convolutions whose composition,
  ``2k-1`` wide, is the smallest odd kernel of at least ``kernel_size``."""
  return kernel_size // 2 + 1


def check_kernel_size(surrogate, kernel_size: Optional[int]) -> None:
  """``kernel_size`` is None, or a positive int for a surrogate that has a
  kernel: ``"auto"`` (its conv candidates) or a family of
  :data:`KERNEL_FAMILIES`; a ValueError naming the fix otherwise."""
  if kernel_size is None:
    return
  if (not isinstance(kernel_size, (int, np.integer)) or
      isinstance(kernel_size, bool) or kernel_size < 1):
    raise ValueError("kernel_size (--kernel-size) must be a positive int, "
                     f"got {kernel_size!r}.")
  if isinstance(surrogate, str) and surrogate in ("auto",) + KERNEL_FAMILIES:
    return
  what = (f"surrogate {surrogate!r} is per-pixel and has no kernel"
          if isinstance(surrogate, str) else
          "a surrogate module has its own kernel")
  raise ValueError(f"kernel_size={kernel_size} (--kernel-size) sets the "
                   f"kernel of the conv surrogates {list(KERNEL_FAMILIES)}, "
                   f"but {what}; leave kernel_size unset, or use "
                   "surrogate='auto', 'conv' or 'conv_mlp'.")


def make_surrogate(surrogate: Union[str, nn.Module], out_channels: int,
                   kernel_size: Optional[int] = None, *,
                   factor: int = 2) -> nn.Module:
  """A family name of :data:`FAMILIES`, :data:`BORDER_FAMILIES` or
  :data:`SHAPE_FAMILIES` -> its
  module (``out_channels`` = C_obs); a module is returned as it is.

  ``kernel_size``: K, the size of the largest kernel a family of
  :data:`KERNEL_FAMILIES` can represent: its two convolutions are each
  :func:`layer_size` ``(K) = K // 2 + 1`` wide, so their effective kernel is
  ``K x K`` for odd K, ``(K+1) x (K+1)`` for even K. ``None``: the default,
  :data:`DEFAULT_KERNEL_SIZE` (two 5x5 layers). A per-pixel family ignores
  it (an ``"auto"`` solve passes it to every candidate; a family named on
  its own is checked by :func:`check_kernel_size`). ``factor``: the
  ``"downsample"`` family's stride (the prior's grid over the
  observations').
  """
  if isinstance(surrogate, nn.Module):
    check_kernel_size(surrogate, kernel_size)
    return surrogate
  families = ALL_FAMILIES
  if surrogate in families:
    kw = {"out_channels": out_channels}
    if surrogate == "downsample":
      kw["factor"] = factor
    if kernel_size is not None and surrogate in KERNEL_FAMILIES:
      check_kernel_size(surrogate, kernel_size)
      kw["kernel_size"] = layer_size(kernel_size)
    return families[surrogate](**kw)
  raise ValueError(f"Unknown surrogate {surrogate!r}; use 'auto', "
                   f"{', '.join(repr(f) for f in families)} or a flax.linen "
                   "Module mapping [B, H, W, S*C] to the observations' shape.")


def effective_kernel(params) -> jax.Array:
  """The kernel ``[2k-1, 2k-1, C_in, C_out]`` of a LinearConvSurrogate
  (``[2k+s-2, ...]`` for a :class:`DownsampleSurrogate` of factor s, whose
  output is this kernel's "same" filter sampled every s pixels).

  Both layers are cross-correlations, so their composition is the
  cross-correlation with the full 2-D convolution of the two kernels, summed
  over the hidden filters. Away from the image border (where the hidden
  layer's zero padding matters) the surrogate without its biases equals a
  "same" cross-correlation with this kernel.
  """
  params = params.get("params", params)
  w1 = params["conv1"]["kernel"]                  # [k, k, Cin, F]
  w2 = params["conv2"]["kernel"]                  # [k, k, F, Cout]
  k = w1.shape[0]
  lhs = jnp.transpose(w1, (2, 0, 1, 3))           # [Cin, k, k, F] as images
  out = jax.lax.conv_general_dilated(
      lhs, w2[::-1, ::-1], window_strides=(1, 1),
      padding=((k - 1, k - 1), (k - 1, k - 1)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"))  # [Cin, 2k-1, 2k-1, Cout]
  out = jnp.transpose(out, (1, 2, 0, 3))
  if "down" in params:          # DownsampleSurrogate: its stride-s layer too
    d = params["down"][:, :, 0, :]                # [s, s, Cout]
    out = jnp.stack([jnp.stack([jax.scipy.signal.convolve2d(
        out[:, :, i, o], d[:, :, o]) for o in range(out.shape[3])], -1)
        for i in range(out.shape[2])], 2)         # [2k+s-2, ..., Cin, Cout]
  return out


def effective_bias(params) -> jax.Array:
  """The constant ``[C_out]`` the linear surrogate adds (interior pixels)."""
  params = params.get("params", params)
  w2 = params["conv2"]["kernel"]
  b1 = params["conv1"].get("bias", jnp.zeros(w2.shape[2]))
  b2 = params["conv2"].get("bias", jnp.zeros(w2.shape[3]))
  return jnp.einsum("f,hwfo->o", b1, w2) + b2


def kernel_centroid(params) -> jax.Array:
  """The energy centroid ``[2]`` (rows, cols; pixels from the centre) of a
  LinearConvSurrogate's :func:`effective_kernel`: the squared weights of
  all channel pairs, summed, locate it."""
  k = effective_kernel(params)                    # [h, w, C_in, C_out]
  e = jnp.sum(k * k, axis=(2, 3))
  rows = jnp.arange(e.shape[0], dtype=e.dtype) - (e.shape[0] - 1) / 2
  cols = jnp.arange(e.shape[1], dtype=e.dtype) - (e.shape[1] - 1) / 2
  tot = jnp.maximum(jnp.sum(e), 1e-30)
  return jnp.stack([jnp.sum(e.sum(1) * rows), jnp.sum(e.sum(0) * cols)]) / tot


def kernel_off_centre(params) -> jax.Array:
  """How far (pixels, ``[]``) :func:`kernel_centroid` sits from the
  kernel's centre."""
  c = kernel_centroid(params)
  return jnp.hypot(c[0], c[1])


def centred_eligible(off, tolerance: float) -> jax.Array:
  """``[R]`` bool: the candidates whose kernel distance from the centre
  (``off [R]``, :func:`kernel_off_centre`) is within ``tolerance`` pixels
  of the smallest; ``select="centred"`` and ``SolverConfig.recentre`` keep
  the best fit among them."""
  off = jnp.asarray(off)
  return off <= jnp.min(off) + tolerance


def learned_mask(params) -> jax.Array:
  """The per-pixel gain ``[H, W, C_obs]`` of a mask family (1: seen as it
  is, 0: lost)."""
  return params.get("params", params)["gain"]


def centres_kernel(module: nn.Module) -> bool:
  """Whether ``select="centred"`` can judge ``module``: a linear conv
  surrogate on the prior's grid (:class:`LinearConvSurrogate` and its
  subclasses, not :class:`DownsampleSurrogate`, whose kernel sits on a
  sampling grid)."""
  return (isinstance(module, LinearConvSurrogate) and
          not isinstance(module, DownsampleSurrogate))


def check_select(select: str, module: nn.Module) -> None:
  """``SolverConfig.select="centred"`` needs a surrogate that
  :func:`centres_kernel`; a ValueError naming the fix otherwise."""
  if select == "centred" and not centres_kernel(module):
    raise ValueError(
        "select='centred' (--select centred) keeps the best fit among the "
        "restarts whose effective kernel is most centred, which needs a "
        "linear conv surrogate ('conv', 'conv_scene' or 'conv_mask'); this "
        f"one is {type(module).__name__}. Use select='fit', or one of those.")
