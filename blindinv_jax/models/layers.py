"""Layers shared by the models, shaped around XLA:CPU's fast paths.

:func:`conv2d` is a stride-1 convolution whose input gradient is written as a
convolution with the flipped kernel in the canonical ``HWIO`` layout. Autodiff
would emit it with the kernel's feature dimensions swapped (``HWOI``), which
XLA:CPU runs on a slow path inside a ``while`` loop: measured for a 3x3
64->32 convolution on [50, 14, 14, 64], 294 ms per input gradient inside a
``fori_loop`` against 19 ms unrolled; the canonical form takes 17 ms in both.
Iterative solvers (``fori_loop`` over gradient steps) depend on this. The
weight gradient of a thin layer (a surrogate's) is likewise one canonical
convolution (batch as the contracted dimension, see
:func:`_conv_weight_grad`).

:class:`Conv` is a drop-in for ``nn.Conv(padding="SAME")`` built on it;
strided convolutions run as stride-1 convolutions on a space-to-depth view
(so their input gradient, a transposed convolution, is stride-1 too).

:class:`PhaseConvTranspose` computes exactly what ``flax.linen.ConvTranspose``
computes (same parameters, same output), as ``s*s`` ordinary stride-1
convolutions on the un-dilated input ("sub-pixel" phases) whose outputs are
interleaved. On XLA:CPU the weight gradient of a transposed convolution takes
a slow path (measured ~10x slower than the forward pass on the MNIST28 layers,
234 ms against 13 ms); the phase form keeps every convolution on the fast path
and does no multiplications by the zeros that input dilation inserts.
"""
from __future__ import annotations

from functools import partial
from typing import Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

_DN = ("NHWC", "HWIO", "NHWC")


def _conv(x, w, padding):
  return jax.lax.conv_general_dilated(x, w, (1, 1), padding,
                                      dimension_numbers=_DN)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv2d(x: jax.Array, w: jax.Array,
           padding: Sequence[Tuple[int, int]]) -> jax.Array:
  """Stride-1 cross-correlation, NHWC x HWIO, explicit ``padding``.

  x: [B, H, W, Cin]; w: [kh, kw, Cin, Cout]; padding: ((top, bottom),
  (left, right)) -> [B, H + top + bottom - kh + 1, ..., Cout].
  """
  return _conv(x, w, padding)


def _conv2d_fwd(x, w, padding):
  return _conv(x, w, padding), (x, w)


def _conv2d_bwd(padding, res, g):
  x, w = res
  kh, kw = w.shape[:2]
  (pt, pb), (pl, pr) = padding
  # Adjoint of a stride-1 correlation: correlation with the flipped kernel,
  # features swapped, materialised in HWIO.
  w_adj = jnp.swapaxes(w[::-1, ::-1], 2, 3)
  dx = conv2d(g, w_adj, ((kh - 1 - pt, kh - 1 - pb), (kw - 1 - pl, kw - 1 - pr)))
  dx = dx[:, :x.shape[1], :x.shape[2]]
  if min(w.shape[2], w.shape[3]) <= _THIN:
    dw = _conv_weight_grad(x, g, padding)
  else:
    _, vjp_w = jax.vjp(lambda w: _conv(x, w, padding), w)
    dw = vjp_w(g)[0]
  return dx, dw


#: Layers with at most this many input or output channels take
#: :func:`_conv_weight_grad`: the surrogates' layers (1->16->1 for MNIST,
#: 3->16->3 for CelebA), whose weights a solver trains inside a loop. Wider
#: layers (a prior's, trained one jitted step at a time) keep autodiff's
#: form: one MNIST28 GAN training step took 452 ms with autodiff's form
#: everywhere, 442 ms with this threshold at 4 and 501 ms at 16
#: (``experiments/perf/bench_wgrad.py``, interleaved, 2 cores).
_THIN = 4


def _conv_weight_grad(x, g, padding):
  """d(sum(g * conv(x, w))) / dw, as one canonical stride-1 convolution.

  The batch becomes the contracted feature dimension: the padded input,
  transposed to [Cin, H, W, B], is correlated with the output gradient,
  transposed to an HWIO kernel [Ho, Wo, B, Cout], giving [Cin, kh, kw, Cout].
  Autodiff's own weight-gradient convolution gives the same numbers but runs
  on a slow XLA:CPU path inside a ``while`` loop. Measured by
  ``experiments/perf/bench_wgrad.py`` (``docs/bench/wgrad.json``, 2 cores), per
  gradient in a ``fori_loop``: 13.6 -> 1.1 ms for the surrogate's 1->16 5x5
  layer on [50, 28, 28, 1], 14.9 -> 2.9 ms for its 16->1 layer, 478 -> 8.4 ms
  for a 32->16 3x3 layer on [64, 28, 28, 32]. Outside loops the two forms
  are within about 1.4x of each other, either way round (see ``_THIN``).
  """
  (pt, pb), (pl, pr) = padding
  xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
  lhs = jnp.transpose(xp, (3, 1, 2, 0))
  rhs = jnp.transpose(g, (1, 2, 0, 3))
  dw = _conv(lhs, rhs, ((0, 0), (0, 0)))
  return jnp.transpose(dw, (1, 2, 0, 3))


conv2d.defvjp(_conv2d_fwd, _conv2d_bwd)


def _same_pads(n: int, k: int, s: int) -> Tuple[int, int]:
  """lax's "SAME" padding of one spatial dimension."""
  out = -(-n // s)
  total = max((out - 1) * s + k - n, 0)
  return total // 2, total - total // 2


def strided_conv2d(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
  """``conv(x, w, strides=(s, s), padding="SAME")`` from stride-1 pieces.

  For s > 1 the input is padded, folded into ``s*s`` phases along the
  channels (space-to-depth) and correlated with the kernel folded the same
  way, so every convolution (and its gradient) is stride 1.
  """
  kh, kw, cin, cout = w.shape
  b, h, wd, _ = x.shape
  ph, pw = _same_pads(h, kh, stride), _same_pads(wd, kw, stride)
  if stride == 1:
    return conv2d(x, w, (ph, pw))
  s = stride
  oh, ow = -(-h // s), -(-wd // s)
  kh2, kw2 = -(-kh // s), -(-kw // s)
  # Pad so that the padded input holds (o + k' - 1) * s rows and columns.
  hp, wp = (oh + kh2 - 1) * s, (ow + kw2 - 1) * s
  x = jnp.pad(x, ((0, 0), (ph[0], hp - h - ph[0]), (pw[0], wp - wd - pw[0]),
                  (0, 0)))
  x = x.reshape(b, hp // s, s, wp // s, s, cin)
  x = x.transpose(0, 1, 3, 2, 4, 5).reshape(b, hp // s, wp // s, s * s * cin)
  w = jnp.pad(w, ((0, kh2 * s - kh), (0, kw2 * s - kw), (0, 0), (0, 0)))
  w = w.reshape(kh2, s, kw2, s, cin, cout).transpose(0, 2, 1, 3, 4, 5)
  w = w.reshape(kh2, kw2, s * s * cin, cout)
  return conv2d(x, w, ((0, 0), (0, 0)))


class _KernelLayer(nn.Module):
  """``kernel`` [kh, kw, Cin, features] and optional ``bias``, as in Flax."""
  features: int
  kernel_size: Tuple[int, int]
  strides: Tuple[int, int] = (1, 1)
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()

  def op(self, x: jax.Array, kernel: jax.Array) -> jax.Array:
    raise NotImplementedError

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", self.kernel_init,
                        (*self.kernel_size, x.shape[-1], self.features),
                        jnp.float32)
    y = self.op(x, kernel.astype(x.dtype))
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,), jnp.float32)
    return y


class Conv(_KernelLayer):
  """Drop-in for ``nn.Conv(features, kernel_size, strides, padding="SAME")``.

  Same parameter names and shapes (``kernel`` [kh, kw, Cin, Cout], ``bias``)
  and output; its gradients stay on XLA:CPU's fast paths inside loops.
  """

  def op(self, x, kernel):
    if self.strides[0] != self.strides[1]:
      raise ValueError("Conv: only equal strides are supported.")
    return strided_conv2d(x, kernel, self.strides[0])


def _same_transpose_pad(k: int, s: int) -> int:
  """Left padding lax.conv_transpose(padding='SAME') uses on the dilated input."""
  pad_len = k + s - 2
  return k - 1 if s > k - 1 else -(-pad_len // 2)


def conv_transpose_phases(x: jax.Array, kernel: jax.Array,
                          strides: Tuple[int, int]) -> jax.Array:
  """``lax.conv_transpose(x, kernel, strides, 'SAME')`` (HWIO kernel, no flip).

  x: [B, H, W, Cin]; kernel: [kh, kw, Cin, Cout] -> [B, H*sh, W*sw, Cout].
  """
  b, h, w, _ = x.shape
  (kh, kw), (sh, sw) = kernel.shape[:2], strides

  def taps(k, s, n):
    """Per output phase r: (first tap t0, left pad, right pad)."""
    pl = _same_transpose_pad(k, s)
    out = []
    for r in range(s):
      t0 = (pl - r) % s
      taps_r = len(range(t0, k, s))
      c = (r + t0 - pl) // s
      out.append((t0, taps_r, -c, taps_r - 1 + c))
    return out

  rows = []
  for t0h, nh, plh, prh in taps(kh, sh, h):
    cols = []
    for t0w, nw, plw, prw in taps(kw, sw, w):
      sub = kernel[t0h::sh, t0w::sw][:nh, :nw]
      xp = jnp.pad(x, ((0, 0), (max(plh, 0), max(prh, 0)),
                       (max(plw, 0), max(prw, 0)), (0, 0)))
      xp = xp[:, max(-plh, 0):xp.shape[1] - max(-prh, 0),
              max(-plw, 0):xp.shape[2] - max(-prw, 0)]
      cols.append(conv2d(xp, sub, ((0, 0), (0, 0))))
    rows.append(jnp.stack(cols, axis=3))          # [B, H, W, sw, C]
  y = jnp.stack(rows, axis=2)                      # [B, H, sh, W, sw, C]
  return y.reshape(b, h * sh, w * sw, kernel.shape[-1])


class PhaseConvTranspose(_KernelLayer):
  """Drop-in for ``nn.ConvTranspose(features, kernel_size, strides, 'SAME')``.

  Same parameter names and shapes (``kernel`` [kh, kw, Cin, Cout], ``bias``),
  same output; faster to differentiate on CPU.
  """

  def op(self, x, kernel):
    return conv_transpose_phases(x, kernel, self.strides)
