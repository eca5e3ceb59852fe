"""Shallow surrogates F_hat of the unknown forward process (paper 3.1, 3.2).

Each maps the stacked sources ``[B, H, W, S*C]`` to an observation
``[B, H, W, C_obs]``.

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

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    m = self.kernel_size - 1
    xp = jnp.pad(x, ((0, 0), (m, m), (m, m), (0, 0)), mode="edge")
    return super().__call__(xp)[:, m:-m, m:-m, :]   # the same two convs


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


#: The surrogate families by name, simplest first (``surrogate="auto"``
#: prefers the earlier of two that fit held-out pixels equally well).
FAMILIES = {"conv": LinearConvSurrogate, "conv_scene": SceneConvSurrogate,
            "mixing": MixingSurrogate, "conv_mlp": ConvMLPSurrogate}


#: The families that are a linear filter (:func:`effective_kernel` is all
#: they do, up to their border and biases).
LINEAR_FAMILIES = ("conv", "conv_scene")
#: The families with a kernel (two convolutions); "mixing" is per-pixel.
KERNEL_FAMILIES = ("conv", "conv_scene", "conv_mlp")
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
                   kernel_size: Optional[int] = None) -> nn.Module:
  """A family name of :data:`FAMILIES` -> its module (``out_channels`` =
  C_obs); a module is returned as it is.

  ``kernel_size``: K, the size of the largest kernel a family of
  :data:`KERNEL_FAMILIES` can represent: its two convolutions are each
  :func:`layer_size` ``(K) = K // 2 + 1`` wide, so their effective kernel is
  ``K x K`` for odd K, ``(K+1) x (K+1)`` for even K. ``None``: the default,
  :data:`DEFAULT_KERNEL_SIZE` (two 5x5 layers). A per-pixel family ignores
  it (an ``"auto"`` solve passes it to every candidate; a family named on
  its own is checked by :func:`check_kernel_size`).
  """
  if isinstance(surrogate, nn.Module):
    check_kernel_size(surrogate, kernel_size)
    return surrogate
  if surrogate in FAMILIES:
    if kernel_size is None or surrogate not in KERNEL_FAMILIES:
      return FAMILIES[surrogate](out_channels=out_channels)
    check_kernel_size(surrogate, kernel_size)
    return FAMILIES[surrogate](out_channels=out_channels,
                               kernel_size=layer_size(kernel_size))
  raise ValueError(f"Unknown surrogate {surrogate!r}; use 'auto', "
                   f"{', '.join(repr(f) for f in FAMILIES)} or a flax.linen "
                   "Module mapping [B, H, W, S*C] to [B, H, W, C_obs].")


def effective_kernel(params) -> jax.Array:
  """The kernel ``[2k-1, 2k-1, C_in, C_out]`` of a LinearConvSurrogate.

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
  return jnp.transpose(out, (1, 2, 0, 3))


def effective_bias(params) -> jax.Array:
  """The constant ``[C_out]`` the linear surrogate adds (interior pixels)."""
  params = params.get("params", params)
  w2 = params["conv2"]["kernel"]
  b1 = params["conv1"].get("bias", jnp.zeros(w2.shape[2]))
  b2 = params["conv2"].get("bias", jnp.zeros(w2.shape[3]))
  return jnp.einsum("f,hwfo->o", b1, w2) + b2


def kernel_off_centre(params) -> jax.Array:
  """How far (pixels, ``[]``) the energy centroid of a LinearConvSurrogate's
  :func:`effective_kernel` sits from the kernel's centre: the squared
  weights of all channel pairs, summed, locate it."""
  k = effective_kernel(params)                    # [h, w, C_in, C_out]
  e = jnp.sum(k * k, axis=(2, 3))
  rows = jnp.arange(e.shape[0], dtype=e.dtype) - (e.shape[0] - 1) / 2
  cols = jnp.arange(e.shape[1], dtype=e.dtype) - (e.shape[1] - 1) / 2
  tot = jnp.maximum(jnp.sum(e), 1e-30)
  return jnp.hypot(jnp.sum(e.sum(1) * rows) / tot,
                   jnp.sum(e.sum(0) * cols) / tot)


def check_select(select: str, module: nn.Module) -> None:
  """``SolverConfig.select="centred"`` needs a surrogate with a linear
  kernel (:class:`LinearConvSurrogate`: ``"conv"``, ``"conv_scene"``); a
  ValueError naming the fix otherwise."""
  if select == "centred" and not isinstance(module, LinearConvSurrogate):
    raise ValueError(
        "select='centred' (--select centred) keeps the restart whose "
        "effective kernel is most centred, which needs a linear conv "
        f"surrogate ('conv' or 'conv_scene'); this one is "
        f"{type(module).__name__}. Use select='fit', or one of those.")
