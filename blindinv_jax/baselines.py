"""Baselines the blind solver is measured against (paper sections 3.1, 3.2).

* :func:`pgd`: projected gradient descent on the latents alone. With
  ``forward=None`` the observation is fitted directly by ``G(z)`` (the paper's
  "PGD": no measurement model); with a known ``forward`` model it is the CSGM
  family's "PGD + known F", the upper bound for a blind method. Same loss,
  clip, restarts and latent schedule as the solver (``SolverConfig``): it runs
  ``outer_steps * latent_steps`` projected Adam steps, vmapped over restarts.
* :func:`naive_additive`: :func:`pgd` with the sources simply summed, no
  weights (the paper's naive model for source separation).
* :func:`wiener_deconvolution`: Wiener filter with the true blur kernel.
* :func:`ica`: FastICA (scikit-learn) over pixels, per observation.
"""
from __future__ import annotations

import functools
import pathlib
import warnings
from functools import partial
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import distributed, extension, latent, runner
from blindinv_jax.algorithm import select_best
from blindinv_jax.config import TUNED, SolverConfig, for_prior
from blindinv_jax.parallel import local_latents, shard_latents
from blindinv_jax.validation import (
  check_positive_int,
  validate_observations,
  warn_if_out_of_range,
)

Forward = Callable[[jax.Array], jax.Array]


def identity_forward(x: jax.Array) -> jax.Array:
  """No measurement model: sources ``[N, 1, H, W, C]`` -> ``[N, H, W, C]``."""
  return x[:, 0]


def additive_forward(x: jax.Array, out_channels: int = 1) -> jax.Array:
  """The naive model: every observation channel is the plain sum of the
  sources; ``[N, S, H, W, C]`` -> ``[N, H, W, out_channels]`` (C = 1)."""
  s = jnp.sum(x, axis=1)
  return jnp.broadcast_to(s, s.shape[:-1] + (out_channels,))


def pgd(y, prior, forward: Optional[Forward] = None, *,
        num_sources: int = 1, config: SolverConfig = TUNED,
        key: Optional[jax.Array] = None, callback=None,
        checkpoint_dir=None, checkpoint_every: int = 10, mesh=None):
  """Projected gradient descent on the latents: ``min_z L(forward(G(z)), y)``.

  Args:
    y: observations ``[N, H, W, C_obs]``.
    prior: the GAN prior.
    forward: a pure function from sources ``[N, S, H, W, C]`` to
      observations ``[N, H, W, C_obs]`` (e.g. ``lambda x: ops.blur(x[:, 0],
      k)``), or ``None`` for no measurement model (``G(z)`` fits ``y`` itself,
      which needs ``num_sources=1`` and ``C_obs = C``). It is a static
      argument: pass the same function object to avoid recompiling.
    num_sources: S.
    config: the solver's config; PGD uses ``outer_steps * latent_steps``
      latent steps, ``latent_lr`` (and its decay), ``alpha``, ``loss``,
      ``clip``, ``restarts``, ``unroll``, ``grad_pieces`` and ``precision``
      (G and D run in the arithmetic the blind solver gives them).
    key: PRNG key of the latent initialisation (default ``key(0)``).
    callback: called as ``callback(outer_step, data_loss [R])``.
    checkpoint_dir: if given, the latents and their Adam state are saved
      there (``pgd_state.ckpt``) every ``checkpoint_every`` outer steps, and
      a run started where such a checkpoint exists resumes from it, bit for
      bit (:mod:`blindinv_jax.runner`).
    mesh: as :func:`blindinv_jax.solver.solve`'s (observations and
      latents along its ``"data"`` axis; on a mesh over several processes
      each brings its rows and gets the whole result).

  Returns:
    ``(sources [N, S, H, W, C], latents [N, S, L], data loss per restart)``
    for the restart with the lowest data loss.
  """
  config = for_prior(config.validate(), prior)
  y = validate_observations(y, prior, num_sources, config.alpha,
                            smaller_grids=forward is not None)
  warn_if_out_of_range(y)
  if forward is None:
    if num_sources != 1 or y.shape[-1] != prior.image_shape[-1]:
      raise ValueError(
          f"pgd without a forward model fits G(z) to y directly, so it needs "
          f"num_sources=1 and observations with the prior's "
          f"{prior.image_shape[-1]} channel(s); got num_sources={num_sources}"
          f" and {y.shape[-1]} channel(s). Pass forward=... instead.")
    forward = identity_forward
  if not callable(forward):
    raise ValueError(f"forward must be a function of the sources or None, "
                     f"got {type(forward).__name__}.")
  key = jax.random.key(0) if key is None else key
  check_positive_int("checkpoint_every", checkpoint_every)
  prior = extension.extend(prior, config)
  view = distributed.global_view(y, mesh)
  n, rows = (y.shape[0], slice(None)) if view is None else view
  y_host = y
  y = jnp.asarray(y) if view is None else y
  z = prior.sample_latents(jax.random.fold_in(key, 0),
                           (config.restarts, n, num_sources))
  state = latent.init(z, config)
  fwd = latent.ParamForward(known=forward)
  ckpt = prepare = None
  if checkpoint_dir is not None:
    ident = latent.identity(y_host, prior, config, key, num_sources,
                            forward=latent.describe(forward))
    if view is not None:
      checkpoint_dir = distributed.process_folder(checkpoint_dir)
      ident = {**ident, **distributed.process_identity(n)}
    ckpt = runner.Checkpoint(
        pathlib.Path(checkpoint_dir) / "pgd_state.ckpt", kind="pgd_state",
        identity=ident, every=checkpoint_every,
        agree=None if view is None else distributed.common_step)
  if mesh is not None:
    state = latent.LatentState(*local_latents(state.z, state.opt, config,
                                              rows))
    y = shard_latents(mesh, y_host, state.z, state.opt, config, n)[0]
    prepare = lambda st, args: (latent.LatentState(*shard_latents(
        mesh, y_host, st.z, st.opt, config, n)[1:]), args)
  out = runner.run(latent.step, state, y, None, prior=prior,
                   steps=config.outer_steps,
                   settings=runner.Settings.of(config),
                   static={"forward": fwd, "config": config},
                   checkpoint=ckpt, unit="outer step", prepare=prepare,
                   callback=None if callback is None else
                   (lambda t, m: callback(t, m["data_loss"])))
  loss = (out.history[-1]["data_loss"] if out.history else
          np.full(config.restarts, np.inf, np.float32))
  z, _ = select_best(jnp.asarray(loss), out.state.z)
  x, z = distributed.gathered((prior.generate(z), z))
  return x, extension.split_latents(z, prior)[0], jnp.asarray(loss)


def bicubic_upsample(y, factor: int) -> jax.Array:
  """Super-resolution's classical baseline: observations ``[N, h, w, C]``
  (every ``factor``-th pixel from the first, as
  :func:`blindinv_jax.operators.downsample` keeps them) interpolated by a
  bicubic kernel to ``[N, h*factor, w*factor, C]``, each sample placed on
  the pixel it was taken from."""
  check_positive_int("bicubic_upsample: factor", factor)
  # Two samples of edge padding on each side: the pixels past the last
  # sample (s - 1 of them at the bottom and right) continue the image
  # instead of fading to zero.
  p = 2
  y = jnp.pad(jnp.asarray(y), ((0, 0), (p, p), (p, p), (0, 0)), mode="edge")
  n, h, w, c = y.shape
  s = float(factor)
  # An output pixel centre o + 1/2 sits at s*(i + 1/2) + t for the sample
  # i taken at pixel s*i: t = 1/2 - s/2.
  up = jax.image.scale_and_translate(
      y, (n, h * factor, w * factor, c), spatial_dims=(1, 2),
      scale=jnp.array([s, s]), translation=jnp.array([0.5 - s / 2] * 2),
      method="cubic", antialias=False)
  o = p * factor
  return up[:, o:o + (h - 2 * p) * factor, o:o + (w - 2 * p) * factor]


def inpaint_biharmonic(y, m) -> np.ndarray:
  """Inpainting's classical baseline with the *known* mask: scikit-image's
  biharmonic inpainting of the lost pixels (``m == 0``) of each observation
  ``y [N, H, W, C]``, ``m [H, W]`` (1: seen). Needs scikit-image (``pip
  install -e ".[experiments]"``)."""
  try:
    from skimage.restoration import inpaint_biharmonic as inpaint
  except ImportError as e:
    raise ImportError("inpaint_biharmonic needs scikit-image: pip install "
                      "-e \".[experiments]\"") from e
  y, lost = np.asarray(y, np.float64), np.asarray(m) == 0
  return np.stack([inpaint(img, lost, channel_axis=-1) for img in y]
                  ).astype(np.float32)


def least_squares_measurements(y, a, image_shape) -> jax.Array:
  """Compressed sensing's classical baseline with the *known* matrix:
  the minimum-norm images ``x`` with ``flat(x) @ A = y`` (least squares
  when K > M), for measurements ``y [N, K]`` and ``A [M, K]``. Returns
  ``[N, *image_shape]``."""
  y, a = jnp.asarray(y), jnp.asarray(a, jnp.float32)
  return (y @ jnp.linalg.pinv(a)).reshape((y.shape[0],) + tuple(image_shape))


@functools.partial(jax.jit, static_argnames=("steps",))
def _ista(y, a, lam, steps: int):
  step = 1.0 / jnp.linalg.norm(a, 2) ** 2          # 1 / Lipschitz constant
  u = jnp.zeros((y.shape[0], a.shape[0]), y.dtype)  # u = x + 1 (background 0)
  shift = -jnp.sum(a, axis=0)                       # flat(-1) @ A

  def body(_, u):
    g = (u @ a + shift - y) @ a.T
    v = u - step * g
    return jnp.sign(v) * jnp.maximum(jnp.abs(v) - step * lam, 0.0)
  return jax.lax.fori_loop(0, steps, body, u) - 1.0


def lasso_measurements(y, a, image_shape, lam: float = 1e-2,
                       steps: int = 2000) -> jax.Array:
  """Compressed sensing with the *known* matrix and a sparsity prior:
  ``argmin_x |flat(x) @ A - y|^2 / 2 + lam |x + 1|_1`` by ISTA (``steps``
  proximal-gradient steps), sparse relative to a ``-1`` background (digits
  on black). ``y [N, K]``, ``A [M, K]``; returns ``[N, *image_shape]``."""
  check_positive_int("lasso_measurements: steps", steps)
  if not lam >= 0:
    raise ValueError(f"lasso_measurements: lam must be >= 0, got {lam!r}.")
  y, a = jnp.asarray(y, jnp.float32), jnp.asarray(a, jnp.float32)
  x = _ista(y, a, jnp.float32(lam), steps)
  return x.reshape((y.shape[0],) + tuple(image_shape))


def naive_additive(y, prior, num_sources: int, *,
                   config: SolverConfig = TUNED,
                   key: Optional[jax.Array] = None):
  """Separation under the naive model ``y_k = sum_i G(z_i)`` for every
  mixture k (no weights, no non-linearity). Returns :func:`pgd`'s tuple."""
  check_positive_int("num_sources", num_sources)
  c_obs = int(np.shape(y)[-1]) if np.ndim(y) == 4 else 1
  return pgd(y, prior, _additive_for(c_obs), num_sources=num_sources,
             config=config, key=key)


@jax.jit
def _wiener(y, kernel, balance):
  n, h, w, c = y.shape
  kh, kw = kernel.shape
  ph, pw = h + kh, w + kw                 # zero-pad: no wrap-around overlap
  # blur() is a SAME cross-correlation; as a convolution its kernel is the
  # flipped one, centred at (kh // 2, kw // 2) for odd sizes and at
  # ((kh - 1) // 2, (kw - 1) // 2) in general.
  psf = jnp.zeros((ph, pw), y.dtype).at[:kh, :kw].set(kernel[::-1, ::-1])
  psf = jnp.roll(psf, (-(kh - 1 - (kh - 1) // 2), -(kw - 1 - (kw - 1) // 2)),
                 axis=(0, 1))
  tf = jnp.fft.rfft2(psf)
  yp = jnp.pad(y, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)))
  yf = jnp.fft.rfft2(yp, axes=(1, 2))
  filt = jnp.conj(tf) / (jnp.abs(tf) ** 2 + balance)
  x = jnp.fft.irfft2(yf * filt[None, :, :, None], s=(ph, pw), axes=(1, 2))
  return x[:, :h, :w, :]


def wiener_deconvolution(y, kernel, balance: float = 1e-2,
                         background: float = 0.0, boundary: str = "scene"):
  """Wiener deconvolution of ``y [N, H, W, C]`` with the true ``kernel``.

  ``x = IFFT(conj(K) Y / (|K|^2 + balance))``, per channel, on the
  observation zero-padded by the kernel size (so the FFT's circular
  convolution does not wrap the borders into each other). ``balance`` is the
  noise-to-signal ratio (the regularisation): 0 is the plain inverse filter.
  Ours, in JAX, rather than scikit-image's ``restoration.wiener``: it is the
  same filter, but jit- and vmap-able on any backend, and it deconvolves
  :func:`blindinv_jax.operators.blur`'s exact kernel convention (a SAME
  cross-correlation) without a flip or shift to get wrong. Output is clipped
  to ``[-1, 1]``, the images' range.

  ``background``: the constant the images sit on (-1 for digits in
  ``[-1, 1]``). With ``boundary="zero"`` ``blur`` zero-pads, so a non-zero
  background turns into a dark or bright frame; since F is known here, its
  response to the background (``background * blur(1, kernel, boundary)``)
  is removed before inverting and the background added back, so the filter
  only inverts the part the FFT model describes exactly. ``boundary`` is
  how the observations were made (:data:`blindinv_jax.operators.
  BOUNDARIES`; the default is ``blur``'s).
  """
  y = jnp.asarray(y, jnp.float32)
  kernel = jnp.asarray(kernel, jnp.float32)
  if y.ndim != 4:
    raise ValueError(f"wiener_deconvolution: y must be [N, H, W, C], got "
                     f"shape {y.shape}.")
  if kernel.ndim != 2:
    raise ValueError(f"wiener_deconvolution: kernel must be 2-D, got shape "
                     f"{kernel.shape}.")
  if not (isinstance(balance, (int, float)) and balance >= 0):
    raise ValueError(f"wiener_deconvolution: balance must be >= 0, got "
                     f"{balance!r}.")
  from blindinv_jax.operators import blur
  frame = background * blur(jnp.ones((1,) + y.shape[1:]), kernel, boundary)
  x = _wiener(y - frame, kernel, jnp.float32(balance)) + background
  return jnp.clip(x, -1.0, 1.0)


def ica(y, num_sources: int, *, seed: int = 0, max_iter: int = 1000,
        n_init: int = 4):
  """FastICA over pixels, per observation: ``y [N, H, W, K]`` -> sources
  ``[N, S, H, W, 1]``, or ``None`` when K < S (ICA cannot unmix fewer
  mixtures than sources: "not applicable").

  Each observation's K mixtures are K signals of H*W samples; FastICA
  (scikit-learn, ``whiten="unit-variance"``) returns S components of
  arbitrary sign and scale. FastICA can stop at a poor fixed point from an
  unlucky start, so it is run from ``n_init`` seeds and the unmixing with the
  most non-Gaussian components (largest total ``|excess kurtosis|``, ICA's
  own criterion, no ground truth involved) is kept. The sign is fixed so each component is positively
  skewed (sparse bright strokes on a dark background, as digits are), then
  every component is stretched to ``[-1, 1]``
  (:func:`blindinv_jax.metrics.normalize_intensity`, applied to every method
  before scoring). The order is arbitrary: score with
  :func:`blindinv_jax.metrics.match_sources`.
  """
  from sklearn.decomposition import FastICA

  from blindinv_jax.metrics import normalize_intensity
  y = np.asarray(y, np.float64)
  if y.ndim != 4:
    raise ValueError(f"ica: y must be [N, H, W, K], got shape {y.shape}.")
  check_positive_int("num_sources", num_sources)
  n, h, w, k = y.shape
  if k < num_sources:
    return None
  out = np.zeros((n, num_sources, h, w, 1), np.float32)
  for i in range(n):
    sig = y[i].reshape(h * w, k)
    best, best_score = None, -np.inf
    for r in range(check_positive_int("n_init", n_init)):
      with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # ConvergenceWarning per start
        comp = FastICA(n_components=num_sources, whiten="unit-variance",
                       random_state=seed + r,
                       max_iter=max_iter).fit_transform(sig)
      comp = comp - comp.mean(0)
      comp = comp / np.maximum(comp.std(0), 1e-12)
      score = float(np.sum(np.abs(np.mean(comp ** 4, axis=0) - 3.0)))
      if score > best_score:
        best, best_score = comp, score
    comp = best
    skew = np.mean(comp ** 3, axis=0)
    comp = comp * np.where(skew < 0, -1.0, 1.0)
    out[i] = comp.T.reshape(num_sources, h, w, 1)
  return np.asarray(normalize_intensity(jnp.asarray(out)))


@functools.lru_cache(maxsize=None)
def _additive_for(out_channels: int) -> Forward:
  """One function object per channel count, so pgd compiles once for it."""
  return partial(additive_forward, out_channels=out_channels)
