"""Forward models used to simulate observations (and by known-F baselines).

All are pure functions on NHWC arrays:

* images ``[N, H, W, C]``; sources ``[N, S, H, W, C]``;
* an observation is ``[N, H, W, C_obs]``; for a mixture of grayscale sources
  ``C_obs`` is the number of mixtures; :func:`downsample` observes a smaller
  grid ``[N, H/s, W/s, C]``, :func:`mask` the same grid with pixels lost,
  and :func:`measure` flat measurements ``[N, K]``.

Filters are applied as cross-correlations (what convolution layers compute),
per channel, with "same" output size; for an even kernel size the extra
row/column of padding goes after (``lax``'s ``"SAME"`` convention). How the
image continues past its frame is ``boundary`` (:data:`BOUNDARIES`):

* ``"scene"`` (the default): the scene continues with its border values
  (edge padding), as a camera sees it: for digits on a -1 background, the
  background;
* ``"zero"``: zeros (on ``[-1, 1]`` images a mid-grey frame, which the
  ``"conv"`` surrogate's own zero padding draws too; the default before
  the ``boundary`` argument existed);
* ``"reflect"``: mirrored about the border pixel, not repeating it (NumPy's
  and PyTorch's ``"reflect"``; SciPy calls it ``"mirror"``);
* ``"circular"``: periodic (what an FFT convolution does).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax.validation import check_positive_int

SOBEL = np.array([[1.0, 0.0, -1.0],
                  [2.0, 0.0, -2.0],
                  [1.0, 0.0, -1.0]], np.float32)


def gaussian_kernel(size: int, sigma: float) -> jax.Array:
  """A normalised 2-D Gaussian ``[size, size]`` centred at ``(size-1)/2``."""
  check_positive_int("gaussian_kernel: size", size)
  if not sigma > 0:
    raise ValueError(f"gaussian_kernel: sigma must be positive, got {sigma!r}.")
  r = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2.0
  g = jnp.exp(-0.5 * (r / sigma) ** 2)
  k = jnp.outer(g, g)
  return k / jnp.sum(k)


#: How the image continues past its frame -> ``jnp.pad`` mode (``"zero"``
#: pads inside the convolution).
BOUNDARIES = {"zero": None, "scene": "edge", "reflect": "reflect",
              "circular": "wrap"}


def check_boundary(boundary: str) -> str:
  """``boundary`` if it is one of :data:`BOUNDARIES`, else a clear error."""
  if boundary not in BOUNDARIES:
    raise ValueError(f"boundary must be one of {sorted(BOUNDARIES)} (how the "
                     f"image continues past its frame), got {boundary!r}.")
  return boundary


def blur(x: jax.Array, kernel: jax.Array, boundary: str = "scene"
         ) -> jax.Array:
  """Filters every channel of x ``[N, H, W, C]`` with kernel ``[kh, kw]``;
  the image continues past its frame as ``boundary`` says (module doc).
  Returns ``[N, H, W, C]``."""
  x = jnp.asarray(x)
  kernel = jnp.asarray(kernel, x.dtype)
  if x.ndim != 4:
    raise ValueError(f"expected images [N, H, W, C], got shape {x.shape}.")
  if kernel.ndim != 2:
    raise ValueError(f"expected a 2-D kernel [kh, kw], got shape "
                     f"{kernel.shape}.")
  mode = BOUNDARIES[check_boundary(boundary)]
  c = x.shape[-1]
  rhs = jnp.tile(kernel[:, :, None, None], (1, 1, 1, c))   # [kh, kw, 1, C]
  padding = "SAME"
  if mode is not None:
    (kh, kw), h, w = kernel.shape, x.shape[1], x.shape[2]
    if mode == "reflect" and (kh > h or kw > w):
      raise ValueError(f"boundary='reflect' needs a kernel no larger than the "
                       f"image ({kh}x{kw} > {h}x{w}).")
    pads = [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in (kh, kw)]
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)), mode=mode)
    padding = "VALID"
  return jax.lax.conv_general_dilated(
      x, rhs, window_strides=(1, 1), padding=padding,
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c)


def edges(x: jax.Array, kernel=SOBEL, boundary: str = "scene") -> jax.Array:
  """The edge map of x ``[N, H, W, C]``: :func:`blur` with an edge kernel."""
  return blur(x, kernel, boundary)


def random_mixing(key: jax.Array, num_sources: int,
                  num_mixtures: int) -> jax.Array:
  """Mixing weights ``M [S, K]`` drawn from N(-0.5, 0.5) (paper 3.2)."""
  check_positive_int("random_mixing: num_sources", num_sources)
  check_positive_int("random_mixing: num_mixtures", num_mixtures)
  return -0.5 + 0.5 * jax.random.normal(key, (num_sources, num_mixtures))


def mix(sources: jax.Array, mixing: jax.Array) -> jax.Array:
  """``|M^T X|`` per pixel: sources ``[N, S, H, W, C]``, M ``[S, K]``.

  Returns ``[N, H, W, K*C]`` with channel ``k*C + c`` the k-th mixture of
  channel c (for grayscale sources: channel k is mixture k).
  """
  sources = jnp.asarray(sources)
  mixing = jnp.asarray(mixing, sources.dtype)
  if sources.ndim != 5:
    raise ValueError(f"expected sources [N, S, H, W, C], got shape "
                     f"{sources.shape}.")
  if mixing.ndim != 2 or mixing.shape[0] != sources.shape[1]:
    raise ValueError(f"mixing must be [S={sources.shape[1]}, K], got shape "
                     f"{mixing.shape}.")
  y = jnp.abs(jnp.einsum("nshwc,sk->nhwkc", sources, mixing))
  n, h, w, k, c = y.shape
  return y.reshape(n, h, w, k * c)


def add_noise(key: jax.Array, y: jax.Array, sigma: float) -> jax.Array:
  """``y + sigma * n`` with n ~ N(0, 1) i.i.d. per entry, for observations
  ``y [N, H, W, C]`` (any shape) on the images' ``[-1, 1]`` scale.

  sigma is the noise's standard deviation in those units. The range is 2,
  so sigma = 0.1 is 0.05 on a ``[0, 1]`` scale, 12.75 grey levels of 255.
  ``sigma = 0`` returns y itself.
  The noise is a function of ``key`` only: same key, same noise.
  """
  if not sigma >= 0:
    raise ValueError(f"add_noise: sigma must be >= 0 (a standard deviation "
                     f"on the [-1, 1] scale), got {sigma!r}.")
  if sigma == 0:
    return y
  y = jnp.asarray(y)
  return y + sigma * jax.random.normal(key, y.shape, y.dtype)


def adjoint(linear_op: Callable[[jax.Array], jax.Array],
            x_like: jax.Array) -> Callable[[jax.Array], jax.Array]:
  """The adjoint of a linear operator (e.g. ``partial(blur, kernel=k)``).

  ``x_like`` gives the input shape and dtype. Used by adjointness tests and
  by gradient-based baselines that need ``A^T``.
  """
  transpose = jax.linear_transpose(linear_op, x_like)
  return lambda y: transpose(y)[0]


# ------------------------------------------ observations of another shape

def downsample(x: jax.Array, factor: int, kernel=None,
               boundary: str = "scene") -> jax.Array:
  """Super-resolution's forward model: x ``[N, H, W, C]`` filtered by
  ``kernel [kh, kw]`` (:func:`blur`, ``None``: no filter), then every
  ``factor``-th pixel kept from the first. Returns ``[N, H/factor,
  W/factor, C]``; H and W must be multiples of ``factor``."""
  check_positive_int("downsample: factor", factor)
  x = jnp.asarray(x)
  if x.ndim != 4:
    raise ValueError(f"expected images [N, H, W, C], got shape {x.shape}.")
  if x.shape[1] % factor or x.shape[2] % factor:
    raise ValueError(f"downsample: the image ({x.shape[1]}x{x.shape[2]}) "
                     f"must be a multiple of factor {factor}.")
  if kernel is not None:
    x = blur(x, kernel, boundary)
  return x[:, ::factor, ::factor, :]


def mask(x: jax.Array, m: jax.Array, fill: float = 0.0) -> jax.Array:
  """Inpainting's forward model: ``m * x + (1 - m) * fill`` for images x
  ``[N, H, W, C]`` and a mask m ``[H, W]`` (or broadcastable to x: 1 where
  a pixel is seen, 0 where it is lost; a lost pixel reads ``fill``)."""
  x = jnp.asarray(x)
  m = jnp.asarray(m, x.dtype)
  if m.ndim == 2:
    m = m[None, :, :, None]
  try:
    jnp.broadcast_shapes(m.shape, x.shape)
  except ValueError:
    raise ValueError(f"mask: m of shape {list(m.shape)} does not fit images "
                     f"{list(x.shape)}; give [H, W] or [N, H, W, C].") from None
  return m * x + (1 - m) * fill


def random_pixel_mask(key: jax.Array, shape, missing: float) -> jax.Array:
  """A mask ``[H, W]`` (``shape``) losing each pixel independently with
  probability ``missing`` (1: seen, 0: lost)."""
  if not 0 <= missing < 1:
    raise ValueError(f"random_pixel_mask: missing must be in [0, 1), got "
                     f"{missing!r}.")
  return (jax.random.uniform(key, tuple(shape)) >= missing).astype(
      jnp.float32)


def scratch_mask(key: jax.Array, shape, count: int = 3,
                 width: float = 2.0) -> jax.Array:
  """A mask ``[H, W]`` (``shape``) with ``count`` straight scratches of
  ``width`` pixels across the image, at random positions and angles (0:
  lost under a scratch, 1: seen)."""
  check_positive_int("scratch_mask: count", count)
  h, w = tuple(shape)
  rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32),
                            jnp.arange(w, dtype=jnp.float32), indexing="ij")
  kc, ka = jax.random.split(key)
  centre = jax.random.uniform(kc, (count, 2)) * jnp.array([h - 1, w - 1])
  angle = jax.random.uniform(ka, (count,)) * jnp.pi
  normal = jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1)       # [count, 2]
  dist = jnp.abs((rows[None] - centre[:, 0, None, None]) * normal[:, 0, None,
                 None] + (cols[None] - centre[:, 1, None, None]) *
                 normal[:, 1, None, None])                      # [count, H, W]
  return jnp.all(dist >= width / 2, axis=0).astype(jnp.float32)


def gaussian_matrix(key: jax.Array, m: int, k: int) -> jax.Array:
  """A measurement matrix ``A [M, K]`` with entries N(0, 1/M): ``x @ A``
  keeps the scale of images on ``[-1, 1]`` (compressed sensing)."""
  check_positive_int("gaussian_matrix: m", m)
  check_positive_int("gaussian_matrix: k", k)
  return jax.random.normal(key, (m, k)) / np.sqrt(m)


def measure(x: jax.Array, a: jax.Array) -> jax.Array:
  """Compressed measurements: images x ``[N, H, W, C]`` flattened to ``[N,
  M]`` (M = H*W*C) times ``A [M, K]``. Returns ``[N, K]``."""
  x = jnp.asarray(x)
  a = jnp.asarray(a, x.dtype)
  flat = x.reshape(x.shape[0], -1)
  if a.ndim != 2 or a.shape[0] != flat.shape[1]:
    raise ValueError(f"measure: A must be [M={flat.shape[1]}, K] for images "
                     f"{list(x.shape[1:])}, got shape {list(a.shape)}.")
  return flat @ a
