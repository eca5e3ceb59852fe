"""Algorithm 1 of the paper: blind recovery of sources and a surrogate of F.

Given observations ``y [N, H, W, C_obs]`` and a GAN prior, alternate

1. a surrogate phase: ``T1`` Adam steps on the surrogate parameters with the
   sources fixed at ``G(z*)`` (computed once for the phase);
2. a latent phase: ``T2`` Adam steps on the latents ``z [N, S, latent]`` with
   the surrogate fixed, each followed by the projection (clip to ``[-1, 1]``),

minimising ``L = sum_j |F_hat(G(z_j)) - y_j|_1 + alpha * L_per`` with
``L_per = sum_j sum_i log(1 - D(G(z_ij)))`` (written ``-softplus(logit)``).

:func:`outer_step` is one jitted function (both phases as ``lax.fori_loop``);
:func:`solve` runs ``T`` outer steps for ``R`` restarts at once (``vmap``) and
keeps, per observation set, the restart with the lowest final data loss.
"""
from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, Callable, Optional, Union

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from blindinv_jax.models.surrogates import LinearConvSurrogate, MixingSurrogate
from blindinv_jax.prior import GANPrior
from blindinv_jax.utils import check_positive_int, usable_cores


@dataclasses.dataclass(frozen=True)
class SolverConfig:
  """Schedule and loss of Algorithm 1 (defaults: the paper's, section 3.1).

  Attributes:
    outer_steps: T, alternations of the two phases.
    surrogate_steps: T1, Adam steps on the surrogate per outer step.
    latent_steps: T2, Adam steps on the latents per outer step.
    surrogate_lr: Adam learning rate of the surrogate (lambda_1).
    latent_lr: Adam learning rate of the latents (lambda_2).
    latent_lr_end: if set, the latent learning rate follows a cosine decay
      from ``latent_lr`` to ``latent_lr_end`` over all ``outer_steps *
      latent_steps`` latent steps (``None``: constant, the paper's).
    alpha: weight of the perceptual loss ``sum log(1 - D(G(z)))``.
    loss: data loss, ``"l1"`` (the paper's) or ``"l2"`` (squared error).
    clip: latents are projected to ``[-clip, clip]`` after every step.
    restarts: R independent initialisations solved together.
    batch_size: ``None`` (all observations at once, the paper's) or B: each
      outer step is then an epoch over shuffled minibatches of B
      observations, each doing the T1 surrogate steps on its batch and the T2
      latent steps on its batch's latents. Memory grows with B, not N; with
      ``B >= N`` it is the full-batch solver.
    unroll: how the inner loops are lowered: ``None`` picks the backend's
      default (:func:`default_unroll`: a ``fori_loop``), ``"full"``
      unrolls them completely (no loop left), an int ``k`` unrolls ``k``
      steps per iteration of a ``fori_loop`` (1: a plain loop).
    chunks: the latent gradient of the N observations is computed in this
      many independent pieces (exact: each observation's gradient depends
      on its own latents only). ``None`` picks :func:`default_chunks`: on
      CPU one piece per core, so that XLA runs the pieces side by side; a
      single small convolution uses 2 cores poorly.
  """
  outer_steps: int = 100
  surrogate_steps: int = 50
  latent_steps: int = 50
  surrogate_lr: float = 4e-3
  latent_lr: float = 3e-4
  latent_lr_end: Optional[float] = None
  alpha: float = 1e-4
  loss: str = "l1"
  clip: float = 1.0
  restarts: int = 1
  batch_size: Optional[int] = None
  unroll: Union[None, int, str] = None
  chunks: Optional[int] = None

  def replace(self, **kw) -> "SolverConfig":
    return dataclasses.replace(self, **kw)

  def validate(self) -> "SolverConfig":
    for f in ("outer_steps", "surrogate_steps", "latent_steps", "restarts"):
      check_positive_int(f"SolverConfig.{f}", getattr(self, f))
    for f in ("surrogate_lr", "latent_lr", "clip"):
      v = getattr(self, f)
      if not (isinstance(v, (int, float)) and np.isfinite(v) and v > 0):
        raise ValueError(f"SolverConfig.{f} must be a positive number, got "
                         f"{v!r}.")
    if self.batch_size is not None:
      check_positive_int("SolverConfig.batch_size", self.batch_size)
    if self.chunks is not None:
      check_positive_int("SolverConfig.chunks", self.chunks)
    if self.latent_lr_end is not None and not (
        isinstance(self.latent_lr_end, (int, float)) and
        np.isfinite(self.latent_lr_end) and self.latent_lr_end > 0):
      raise ValueError(f"SolverConfig.latent_lr_end must be None or a "
                       f"positive number, got {self.latent_lr_end!r}.")
    if not (isinstance(self.alpha, (int, float)) and self.alpha >= 0):
      raise ValueError(f"SolverConfig.alpha must be >= 0, got {self.alpha!r}.")
    if not (self.unroll is None or self.unroll == "full" or (
        isinstance(self.unroll, (int, np.integer)) and
        not isinstance(self.unroll, bool) and self.unroll >= 1)):
      raise ValueError(f"SolverConfig.unroll must be None, 'full' or a "
                       f"positive int, got {self.unroll!r}.")
    if self.loss not in ("l1", "l2"):
      raise ValueError(f"SolverConfig.loss must be 'l1' or 'l2', got "
                       f"{self.loss!r}.")
    return self


#: The paper's schedule (section 3.1): T=100, T1=T2=50, Adam 4e-3 / 3e-4.
PAPER = SolverConfig()

#: The schedule the MNIST experiments use (``experiments/configs/``), tuned
#: on 16 digits of the mnist5k validation split for blind deblurring
#: (``experiments/tune_schedule.py``; README, "Tuning the schedule"): the
#: paper's latent step size 3e-4 reaches 16.3 dB there after 60 outer steps
#: and is still climbing, 1e-2 reaches 23.1 dB. ``reproduce.py --schedule
#: paper`` uses PAPER instead.
TUNED = SolverConfig(outer_steps=60, latent_lr=1e-2)

#: TUNED cut to 30 outer steps, lowered as a plain ``fori_loop`` whatever
#: the backend: 21.2 dB on the same validation digits. ``blindinv demo``
#: and the quickstart notebook use it.
FAST = TUNED.replace(outer_steps=30, unroll=1)


def default_unroll() -> Union[int, str]:
  """The inner-loop lowering for the default backend: a plain ``fori_loop``.

  Measured on 2 CPU cores (``experiments/bench.py``, MNIST prior, T1=T2=50,
  the latent gradient in 2 pieces; ``docs/bench/bench.md``): at N=50 the
  fully unrolled program runs an outer step in 5.26 s after a 97 s compile,
  the ``fori_loop`` in 6.73 s after 7 s, so over a 60-step solve both take
  ~410 s, and the loop is the faster one at N=1 (0.22 s against 0.33 s).
  The loop keeps compiles under 20 s; ``unroll="full"`` is faster for long
  runs at large N. Other backends are not yet measured.
  """
  return 1


def default_chunks() -> int:
  """Pieces of the latent gradient for the default backend: the number of
  usable cores on CPU, 1 elsewhere. Measured on 2 cores (``bench.py``,
  README "Speed"): 1.13-1.15x per outer step while the convolutions ran on
  YNNPACK, level (5.61 s against 5.57 s at N=50) since
  :data:`STEP_COMPILER_OPTIONS`."""
  return usable_cores() if jax.default_backend() == "cpu" else 1


def _chunk_bounds(n: int, chunks: Optional[int]):
  """Static (start, stop) of near-equal pieces of range(n)."""
  k = max(1, min(n, default_chunks() if chunks is None else chunks))
  edges = [round(i * n / k) for i in range(k + 1)]
  return list(zip(edges[:-1], edges[1:]))


def map_restarts(fn, *args):
  """``jax.vmap(fn)(*args)`` over the leading restart axis; with a single
  restart ``fn`` runs unbatched (a vmapped surrogate has batched weights,
  which XLA:CPU convolves ~20% slower)."""
  if jax.tree_util.tree_leaves(args)[0].shape[0] == 1:
    out = fn(*jax.tree_util.tree_map(lambda a: a[0], args))
    return jax.tree_util.tree_map(lambda a: a[None], out)
  return jax.vmap(fn)(*args)


class SolverState(flax.struct.PyTreeNode):
  """Everything Algorithm 1 carries between outer steps.

  z: latents ``[R, N, S, latent_dim]``; surrogate_params / surrogate_opt: one
  surrogate per restart (leading axis R); latent_opt: Adam state of z; step:
  outer steps done; key: the solve's PRNG key.
  """
  z: jax.Array
  surrogate_params: Any
  surrogate_opt: Any
  latent_opt: Any
  step: jax.Array
  key: jax.Array


class SolveResult(flax.struct.PyTreeNode):
  """What :func:`solve` returns (the best restart).

  sources: ``[N, S, H, W, C]``; latents: ``[N, S, latent_dim]``;
  surrogate_params: the surrogate's variables; reconstruction:
  ``F_hat(G(z*))`` ``[N, H, W, C_obs]``; history: per outer step (and
  restart, ``[T, R]``) ``surrogate_loss`` and ``latent_loss`` (mean absolute
  data error per observation pixel at the end of each phase) and
  ``perceptual`` (mean ``log(1 - D(G(z)))`` per source); best_restart: index
  of the kept restart; state: the final :class:`SolverState` (all restarts);
  message: empty, or why the solve stopped early (a non-finite loss).
  """
  sources: jax.Array
  latents: jax.Array
  surrogate_params: Any
  reconstruction: jax.Array
  history: Any
  best_restart: jax.Array
  state: SolverState
  surrogate: nn.Module = flax.struct.field(pytree_node=False)
  message: str = flax.struct.field(pytree_node=False, default="")


def make_surrogate(surrogate: Union[str, nn.Module],
                   out_channels: int) -> nn.Module:
  """``"conv"`` -> LinearConvSurrogate, ``"mixing"`` -> MixingSurrogate."""
  if isinstance(surrogate, nn.Module):
    return surrogate
  if surrogate == "conv":
    return LinearConvSurrogate(out_channels=out_channels)
  if surrogate == "mixing":
    return MixingSurrogate(out_channels=out_channels)
  raise ValueError(f"Unknown surrogate {surrogate!r}; use 'conv', 'mixing' "
                   "or a flax.linen Module mapping [B, H, W, S*C] to "
                   "[B, H, W, C_obs].")


# ------------------------------------------------------------------ pieces

def surrogate_optimizer(config: SolverConfig) -> optax.GradientTransformation:
  """Adam on the surrogate parameters (its state persists across steps)."""
  return optax.adam(config.surrogate_lr)


def latent_optimizer(config: SolverConfig) -> optax.GradientTransformation:
  """Adam on the latents, with the optional cosine decay of the step size
  (the step count lives in the optimiser state, so the schedule runs across
  outer steps)."""
  if config.latent_lr_end is None:
    return optax.adam(config.latent_lr)
  total = config.outer_steps * config.latent_steps
  return optax.adam(optax.cosine_decay_schedule(
      config.latent_lr, total, alpha=config.latent_lr_end / config.latent_lr))


def stack_sources(x: jax.Array) -> jax.Array:
  """Sources ``[..., S, H, W, C]`` -> surrogate input ``[..., H, W, S*C]``."""
  x = jnp.moveaxis(x, -4, -2)                     # [..., H, W, S, C]
  return x.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])


def data_loss(y_est: jax.Array, y: jax.Array, kind: str,
              weights: Optional[jax.Array] = None) -> jax.Array:
  """Sum over observations of the L1 (or squared L2) error; ``weights [N]``
  (0 or 1) leave out padding observations of a minibatch."""
  d = y_est - y
  e = jnp.abs(d) if kind == "l1" else d * d
  if weights is None:
    return jnp.sum(e)
  return jnp.sum(jnp.sum(e, axis=tuple(range(1, e.ndim))) * weights)


def perceptual_loss(prior: GANPrior, x: jax.Array,
                    weights: Optional[jax.Array] = None) -> jax.Array:
  """``sum log(1 - D(x))`` over all sources, as ``-softplus(logit)``."""
  per = -jax.nn.softplus(prior.discriminate(x))           # [N, S]
  if weights is None:
    return jnp.sum(per)
  return jnp.sum(per * weights[:, None])


def surrogate_phase(params, opt, x_stacked, y, surrogate: nn.Module,
                    config: SolverConfig, unroll, weights=None):
  """T1 Adam steps on one surrogate; sources fixed (``x_stacked`` computed once).

  x_stacked: ``[N, H, W, S*C]``; y: ``[N, H, W, C_obs]``; weights: ``[N]``
  or None. Returns ``(params, opt, final data loss)``.
  """
  tx = surrogate_optimizer(config)
  loss_fn = lambda p: data_loss(surrogate.apply(p, x_stacked), y, config.loss,
                                weights)

  def body(_, carry):
    params, opt = carry
    grads = jax.grad(loss_fn)(params)
    upd, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, upd), opt

  params, opt = jax.lax.fori_loop(0, config.surrogate_steps, body,
                                  (params, opt), unroll=unroll)
  return params, opt, loss_fn(params)


def project_latents(z, opt, forward, y, prior: GANPrior,
                    config: SolverConfig, unroll, weights=None):
  """T2 projected Adam steps on latents z ``[N, S, L]`` minimising
  ``data_loss(forward(G(z)), y) + alpha * perceptual_loss(G(z))``, each
  followed by the clip to ``[-clip, clip]``.

  forward: sources ``[N, S, H, W, C]`` -> observations ``[N, H, W, C_obs]``
  (the surrogate in the solver, a known F in the PGD baselines), applied
  to each observation on its own (the gradient is computed in
  ``config.chunks`` pieces of the N observations).
  Returns ``(z, opt, (data loss, perceptual loss) at the final z)``.
  """
  tx = latent_optimizer(config)
  bounds = _chunk_bounds(z.shape[0], config.chunks)

  def losses(z, y, w):
    x = prior.generate(z)                                 # [n, S, H, W, C]
    dl = data_loss(forward(x), y, config.loss, w)
    per = (perceptual_loss(prior, x, w) if config.alpha > 0
           else jnp.zeros(()))
    return dl + config.alpha * per, (dl, per)

  def grad(z):
    # Each observation's loss depends on its own latents only, so the
    # pieces' gradients are exact; XLA runs independent pieces in parallel.
    gs = []
    for a, b in bounds:
      w = None if weights is None else weights[a:b]
      gs.append(jax.grad(lambda z: losses(z, y[a:b], w)[0])(z[a:b]))
    return gs[0] if len(gs) == 1 else jnp.concatenate(gs)

  def body(_, carry):
    z, opt = carry
    grads = grad(z)
    upd, opt = tx.update(grads, opt, z)
    z = jnp.clip(optax.apply_updates(z, upd), -config.clip, config.clip)
    return z, opt

  z, opt = jax.lax.fori_loop(0, config.latent_steps, body, (z, opt),
                             unroll=unroll)
  return z, opt, losses(z, y, weights)[1]


def latent_phase(z, opt, params, y, prior: GANPrior, surrogate: nn.Module,
                 config: SolverConfig, unroll, weights=None):
  """T2 projected Adam steps on the latents z ``[N, S, L]`` of one restart,
  the surrogate fixed (:func:`project_latents` through the surrogate).

  Returns ``(z, opt, (data loss, perceptual loss) at the final z)``.
  """
  forward = lambda x: surrogate.apply(params, stack_sources(x))
  return project_latents(z, opt, forward, y, prior, config, unroll, weights)


def _resolve_unroll(config: SolverConfig):
  u = default_unroll() if config.unroll is None else config.unroll
  return True if u == "full" else int(u)


#: XLA options of the solver's jitted steps. On CPU, YNNPACK is kept for
#: matrix products only; the generator's convolutions then take XLA:CPU's
#: own path, which uses both cores better: one outer step (N=50, T1=T2=50,
#: ``fori_loop``, 2 cores) 7.34 s -> 5.96 s; N=10, T1=T2=10: 0.353 -> 0.264
#: s. A DebugOptions field, ignored by other backends.
STEP_COMPILER_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}


@partial(jax.jit, static_argnames=("surrogate", "config"),
         donate_argnames=("state",), compiler_options=STEP_COMPILER_OPTIONS)
def outer_step(state: SolverState, y: jax.Array, prior: GANPrior,
               surrogate: nn.Module, config: SolverConfig):
  """One outer step of Algorithm 1 for all restarts (one jitted program).

  state: a :class:`SolverState`; y: ``[N, H, W, C_obs]``.
  Returns ``(state, metrics)``: ``surrogate_loss``, ``latent_loss`` and
  ``perceptual`` per restart ``[R]``, and ``finite`` (a bool): if any loss or
  any part of the new state is NaN or Inf, the step is not taken and the
  input state is returned unchanged (with ``finite=False``).
  """
  unroll = _resolve_unroll(config)
  n_pix = y.size

  def one_restart(z, params, s_opt, z_opt):
    x_stacked = stack_sources(prior.generate(z))          # G(z*) once
    params, s_opt, s_loss = surrogate_phase(params, s_opt, x_stacked, y,
                                            surrogate, config, unroll)
    z, z_opt, (dl, per) = latent_phase(z, z_opt, params, y, prior, surrogate,
                                       config, unroll)
    return z, params, s_opt, z_opt, (s_loss, dl, per)

  z, params, s_opt, z_opt, (s_loss, dl, per) = map_restarts(one_restart,
      state.z, state.surrogate_params, state.surrogate_opt, state.latent_opt)
  return _finish_step(state, (z, params, s_opt, z_opt), (s_loss, dl, per),
                      n_pix)


def _finish_step(state: SolverState, taken, losses, n_pix):
  """Metrics, and the numerical-safety rule: a step whose losses or state
  are not finite is not taken; the state stays at the last finite one."""
  s_loss, dl, per = losses
  metrics = {"surrogate_loss": s_loss / n_pix, "latent_loss": dl / n_pix,
             "perceptual": per / (state.z.shape[1] * state.z.shape[2])}
  finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in
                              jax.tree_util.tree_leaves((metrics, taken))]))
  kept = (state.z, state.surrogate_params, state.surrogate_opt,
          state.latent_opt)
  z, params, s_opt, z_opt = jax.tree_util.tree_map(
      lambda a, b: jnp.where(finite, a, b), taken, kept)
  new = SolverState(z=z, surrogate_params=params, surrogate_opt=s_opt,
                    latent_opt=z_opt, step=state.step + finite.astype(
                        state.step.dtype), key=state.key)
  return new, {**metrics, "finite": finite}


def minibatch_plan(key: jax.Array, step: jax.Array, n: int, batch_size: int):
  """Shuffled minibatches for one epoch: ``(idx [nb, B], valid [nb, B])``.

  The last batch is topped up with observations of the first batches,
  marked invalid (weight 0, never written back).
  """
  nb = -(-n // batch_size)
  perm = jax.random.permutation(jax.random.fold_in(
      jax.random.fold_in(key, 1), step), n)
  pad = nb * batch_size - n
  idx = jnp.concatenate([perm, perm[:pad]]).reshape(nb, batch_size)
  valid = (jnp.arange(nb * batch_size) < n).reshape(nb, batch_size)
  return idx, valid.astype(jnp.float32)


@partial(jax.jit, static_argnames=("surrogate", "config"),
         donate_argnames=("state",), compiler_options=STEP_COMPILER_OPTIONS)
def minibatch_outer_step(state: SolverState, y: jax.Array, prior: GANPrior,
                         surrogate: nn.Module, config: SolverConfig):
  """One outer step in minibatch mode: an epoch over shuffled minibatches.

  For each minibatch of ``config.batch_size`` observations (a
  ``lax.fori_loop``): the T1 surrogate steps on the batch, with its
  ``G(z*)`` computed once, then the T2 latent steps on the batch's latents.
  Latents and their Adam moments for all N live in one array; a batch's rows
  are gathered, updated and scattered back, and the optimiser's step count
  restarts from the epoch's value for every batch, so each latent sees the
  same Adam steps as in the full-batch solver. Memory grows with the batch
  size, not with N. Same return value as :func:`outer_step`; the losses are
  sums over the epoch's batches (end of each batch's phases).
  """
  unroll = _resolve_unroll(config)
  n = y.shape[0]
  idx, valid = minibatch_plan(state.key, state.step, n, config.batch_size)
  zshape = state.z.shape[1:]

  def one_restart(z, params, s_opt, z_opt):
    def gather(opt, ids):
      return jax.tree_util.tree_map(
          lambda a: a[ids] if a.shape == zshape else a, opt)

    def body(i, carry):
      z, params, s_opt, z_opt_all, z_opt_out, s_acc, dl_acc, per_acc = carry
      ids, w = idx[i], valid[i]
      yb, zb = y[ids], z[ids]
      x_stacked = stack_sources(prior.generate(zb))
      params, s_opt, s_loss = surrogate_phase(params, s_opt, x_stacked, yb,
                                              surrogate, config, unroll, w)
      zb_new, optb, (dl, per) = latent_phase(zb, gather(z_opt_all, ids),
                                             params, yb, prior, surrogate,
                                             config, unroll, w)
      keep = w[:, None, None] > 0
      z = z.at[ids].set(jnp.where(keep, zb_new, zb))
      z_opt_all = jax.tree_util.tree_map(
          lambda full, new: full.at[ids].set(jnp.where(keep, new, full[ids]))
          if full.shape == zshape else full, z_opt_all, optb)
      z_opt_out = jax.tree_util.tree_map(
          lambda full, new: full if full.shape == zshape else new, z_opt_out,
          optb)
      return (z, params, s_opt, z_opt_all, z_opt_out, s_acc + s_loss,
              dl_acc + dl, per_acc + per)

    zero = jnp.zeros((), jnp.float32)
    z, params, s_opt, z_opt_all, z_opt_out, s_loss, dl, per = \
        jax.lax.fori_loop(0, idx.shape[0], body,
                          (z, params, s_opt, z_opt, z_opt, zero, zero, zero))
    # Per-latent moments from the scatters, shared leaves (step counts) from
    # the last batch (every batch ends at the same count).
    z_opt = jax.tree_util.tree_map(
        lambda full, out: full if full.shape == zshape else out, z_opt_all,
        z_opt_out)
    return z, params, s_opt, z_opt, (s_loss, dl, per)

  z, params, s_opt, z_opt, losses = map_restarts(
      one_restart, state.z, state.surrogate_params, state.surrogate_opt,
      state.latent_opt)
  return _finish_step(state, (z, params, s_opt, z_opt), losses, y.size)


@partial(jax.jit, static_argnames=("surrogate", "config", "num_sources"))
def init_state(key: jax.Array, y: jax.Array, prior: GANPrior,
               surrogate: nn.Module, config: SolverConfig,
               num_sources: int,
               init_latents: Optional[jax.Array] = None) -> SolverState:
  """Latents uniform in ``[-1, 1]`` and a fresh surrogate, per restart.

  ``init_latents [N, S, L]``, if given, replaces restart 0's random latents
  (clipped to ``[-clip, clip]``); the other restarts stay random.
  """
  r, n = config.restarts, y.shape[0]
  kz, ks = jax.random.split(jax.random.fold_in(key, 0))
  z = prior.sample_latents(kz, (r, n, num_sources))
  if init_latents is not None:
    z = z.at[0].set(jnp.clip(jnp.asarray(init_latents, z.dtype),
                             -config.clip, config.clip))
  h, w, c = prior.image_shape
  x_like = jnp.zeros((1, h, w, num_sources * c), y.dtype)
  params = jax.vmap(lambda k: surrogate.init(k, x_like))(
      jax.random.split(ks, r))
  s_opt = jax.vmap(surrogate_optimizer(config).init, axis_size=r)(params)
  z_opt = jax.vmap(latent_optimizer(config).init)(z)
  return SolverState(z=z, surrogate_params=params, surrogate_opt=s_opt,
                     latent_opt=z_opt, step=jnp.zeros((), jnp.int32), key=key)


@partial(jax.jit, static_argnames=("surrogate",))
def finalize(state: SolverState, y: jax.Array, prior: GANPrior,
             surrogate: nn.Module):
  """Picks the restart with the lowest data loss: (sources, z, params, y_hat, r)."""
  x = jax.vmap(prior.generate)(state.z)                 # [R, N, S, H, W, C]
  y_hat = jax.vmap(lambda p, x: surrogate.apply(p, stack_sources(x)))(
      state.surrogate_params, x)
  err = jnp.sum(jnp.abs(y_hat - y[None]), axis=tuple(range(1, y.ndim + 1)))
  best = jnp.argmin(err)
  pick = lambda a: a[best]
  return (x[best], state.z[best],
          jax.tree_util.tree_map(pick, state.surrogate_params), y_hat[best],
          best)


def validate_observations(y, prior: GANPrior, num_sources) -> np.ndarray:
  """Checks y before any tracing; returns it as float32 ``[N, H, W, C_obs]``."""
  y = np.asarray(y)
  if y.ndim == 3:
    raise ValueError(f"observations must be [N, H, W, C_obs]; got shape "
                     f"{y.shape}: add a channel axis (y[..., None]) for "
                     "single-channel images.")
  if y.ndim != 4:
    raise ValueError(f"observations must be [N, H, W, C_obs], got shape "
                     f"{y.shape}.")
  if not (np.issubdtype(y.dtype, np.floating) or
          np.issubdtype(y.dtype, np.integer)) or y.dtype == np.bool_:
    raise ValueError(f"observations must be real numbers (a float or int "
                     f"array), got dtype {y.dtype}.")
  y = y.astype(np.float32)
  if y.shape[0] < 1:
    raise ValueError("observations: need at least one observation (N >= 1).")
  if tuple(y.shape[1:3]) != tuple(prior.image_shape[:2]):
    raise ValueError(
        f"observations are {y.shape[1]}x{y.shape[2]} but the prior generates "
        f"{prior.image_shape[0]}x{prior.image_shape[1]} images; resize them or "
        "use a prior trained at that size.")
  if not np.all(np.isfinite(y)):
    bad = int(np.size(y) - np.count_nonzero(np.isfinite(y)))
    raise ValueError(f"observations contain {bad} NaN or Inf values; remove "
                     "or repair them before solving.")
  check_positive_int("num_sources", num_sources)
  return y


def warn_if_out_of_range(y: np.ndarray, limit: float = 10.0) -> None:
  """Warns when observations are far outside what images in [-1, 1] give.

  A blur of images in ``[-1, 1]`` stays in ``[-1, 1]``, a Sobel edge map in
  ``[-8, 8]``, a mixture ``|M^T X|`` of three sources within a few units.
  Values beyond ``limit`` usually mean the data were not rescaled (e.g.
  uint8 0..255).
  """
  import warnings
  peak = float(np.max(np.abs(y)))
  if peak > limit:
    warnings.warn(
        f"observations reach |y| = {peak:g}, far outside the range the prior's "
        f"images [-1, 1] produce (|y| <= 8 for the built-in forward models); "
        "rescale them the way the prior's training images were "
        "(e.g. y / 127.5 - 1 for 0..255 data), or the solver may not converge.",
        UserWarning, stacklevel=3)


def check_surrogate(module: nn.Module, prior: GANPrior, num_sources: int,
                    out_channels: int) -> None:
  """Checks (abstractly, no compute) that the surrogate maps the stacked
  sources ``[1, H, W, S*C]`` to ``[1, H, W, C_obs]``."""
  h, w, c = prior.image_shape
  x_like = jax.ShapeDtypeStruct((1, h, w, num_sources * c), jnp.float32)
  want = (1, h, w, out_channels)
  name = type(module).__name__
  try:
    out, _ = jax.eval_shape(lambda x: module.init_with_output(
        jax.random.key(0), x), x_like)
  except Exception as e:  # a module that cannot take S*C input channels
    raise ValueError(
        f"surrogate {name} cannot take {num_sources} source(s) of {c} "
        f"channel(s) (input [1, {h}, {w}, {num_sources * c}]): {e}") from e
  if tuple(out.shape) != want:
    raise ValueError(
        f"surrogate {name} maps [1, {h}, {w}, {num_sources * c}] to "
        f"{list(out.shape)}, but the observations need {list(want)} "
        f"(C_obs = {out_channels}).")


SOLVE_KIND = "solver_state"


def _fingerprint(*arrays) -> str:
  import hashlib
  h = hashlib.sha256()
  for a in arrays:
    a = np.ascontiguousarray(np.asarray(a))
    h.update(str((a.shape, a.dtype.str)).encode())
    h.update(a.tobytes())
  return h.hexdigest()


def _solve_identity(y, prior, module, config, num_sources, key,
                    init_latents=None) -> dict:
  """What a checkpoint must match to be resumed (JSON)."""
  from blindinv_jax import __version__
  cfg = dataclasses.asdict(config)
  if config.latent_lr_end is None:      # else the decay depends on T
    cfg.pop("outer_steps")              # a resumed run may run longer
  if config.chunks is None:             # added later: absent in older files
    cfg.pop("chunks")
  ident = {"config": cfg, "num_sources": num_sources,
           "surrogate": repr(module), "key": _fingerprint(
              jax.random.key_data(key)),
           "observations": _fingerprint(y),
           "prior": _fingerprint(*jax.tree_util.tree_leaves(
               (prior.g_vars, prior.d_vars))),
           "package_version": __version__}
  if init_latents is not None:          # absent in older files: random init
    ident["init_latents"] = _fingerprint(init_latents)
  return ident


#: The per-restart losses an outer step reports and the history keeps.
LOSS_KEYS = ("surrogate_loss", "latent_loss", "perceptual")


def _stack_history(history, restarts: int) -> dict:
  """Per-step host metrics -> ``{loss: [T, R]}`` (``[0, R]`` when empty)."""
  return {k: np.stack([h[k] for h in history]) if history else
          np.zeros((0, restarts), np.float32) for k in LOSS_KEYS}


def _save_solve(path, state, history, identity):
  from blindinv_jax import checkpoint
  tree = {"state": jax.device_get(state.replace(
      key=jax.random.key_data(state.key))),
          "history": _stack_history(history, state.z.shape[0])}
  checkpoint.save(path, tree, kind=SOLVE_KIND,
                  meta={"identity": identity, "step": int(state.step)})


def _load_solve(path, template: SolverState, identity):
  """(state, history) from a solve checkpoint that matches ``identity``."""
  from flax import serialization
  from blindinv_jax import checkpoint
  tree, meta = checkpoint.load(path, kind=SOLVE_KIND)
  old = meta.get("identity", {})
  diff = sorted(k for k in set(identity) | set(old)
                if k != "package_version" and old.get(k) != identity.get(k))
  if diff:
    what = {"observations": "observations", "prior": "prior",
            "key": "PRNG key (seed)", "num_sources": "number of sources",
            "surrogate": "surrogate", "config": "solver config",
            "init_latents": "initial latents (init_latents)"}
    details = []
    for k in diff:
      if k == "config":
        cdiff = sorted(f for f in identity["config"] if
                       old.get("config", {}).get(f) != identity["config"][f])
        details.append("solver config (" + ", ".join(
            f"{f}: {old.get('config', {}).get(f)!r} -> "
            f"{identity['config'][f]!r}" for f in cdiff) + ")")
      else:
        details.append(what.get(k, k))
    raise ValueError(
        f"{path} is a checkpoint of a different solve: its "
        f"{', '.join(details)} differ from this one's. Resume with the same "
        "inputs, or write to a new output folder.")
  raw_key = jax.random.key_data(template.key)
  state = serialization.from_state_dict(template.replace(key=raw_key),
                                        tree["state"])
  state = jax.tree_util.tree_map(jnp.asarray, state)
  state = state.replace(key=jax.random.wrap_key_data(
      state.key, impl=jax.random.key_impl(template.key)))
  hist = tree["history"]
  steps = int(meta.get("step", 0))
  history = [{k: np.asarray(hist[k][t]) for k in hist} for t in range(steps)]
  return state, history


def shard(mesh, y: jax.Array, state: SolverState):
  """Places y ``[N, ...]`` and the latents ``[R, N, ...]`` (with their Adam
  moments) along the mesh's ``"data"`` axis; everything else replicated.

  The solver relies on XLA's sharding propagation (GSPMD), so the mesh is
  used with ``AxisType.Auto`` axes whatever axis types it was made with
  (``jax.make_mesh`` makes explicit ones by default).
  """
  from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P
  if "data" not in mesh.axis_names:
    raise ValueError(f"mesh needs an axis named 'data' to shard the "
                     f"observations over; it has {mesh.axis_names}.")
  mesh = Mesh(mesh.devices, mesh.axis_names,
              axis_types=(AxisType.Auto,) * len(mesh.axis_names))
  size = mesh.shape["data"]
  if y.shape[0] % size:
    raise ValueError(f"N = {y.shape[0]} observations do not split evenly over "
                     f"the mesh's {size} 'data' devices; use a multiple of "
                     f"{size}.")
  rep = NamedSharding(mesh, P())
  y = jax.device_put(y, NamedSharding(mesh, P("data")))
  z_sh = NamedSharding(mesh, P(None, "data"))
  zshape = state.z.shape
  place = lambda a: jax.device_put(a, z_sh if a.shape == zshape else rep)
  return y, state.replace(
      z=place(state.z),
      latent_opt=jax.tree_util.tree_map(place, state.latent_opt),
      surrogate_params=jax.device_put(state.surrogate_params, rep),
      surrogate_opt=jax.device_put(state.surrogate_opt, rep),
      step=jax.device_put(state.step, rep),
      key=jax.device_put(state.key, rep))


def solve(y, prior: GANPrior, *, num_sources: int = 1,
          surrogate: Union[str, nn.Module] = "conv",
          config: SolverConfig = TUNED,
          key: Optional[jax.Array] = None,
          callback: Optional[Callable[[int, dict], None]] = None,
          checkpoint_dir=None, checkpoint_every: int = 10,
          mesh=None, init_latents=None) -> SolveResult:
  """Blindly recovers sources and a surrogate of F from observations.

  Args:
    y: observations ``[N, H, W, C_obs]`` in the range of ``F(sources)``.
    prior: a :class:`GANPrior` of the sources.
    num_sources: S, sources per observation.
    surrogate: ``"conv"`` (linear 2-layer conv), ``"mixing"`` (per-pixel MLP)
      or a Flax module mapping ``[B, H, W, S*C]`` to ``[B, H, W, C_obs]``.
    config: :class:`SolverConfig` (default :data:`TUNED`; :data:`PAPER` is the
      paper's schedule).
    key: PRNG key (default ``key(0)``). Same key, same result.
    callback: called as ``callback(step, metrics)`` after every outer step
      with host numpy metrics ``[R]``.
    checkpoint_dir: if given, the full solver state (and the loss history) is
      saved atomically to ``checkpoint_dir/solve_state.ckpt`` every
      ``checkpoint_every`` outer steps and at the end, and a solve started
      where such a checkpoint exists resumes from it, ending bit for bit where
      an uninterrupted solve would. A checkpoint of a different solve (other
      observations, prior, key, sources, surrogate or config; only
      ``outer_steps`` may grow) is refused.
    checkpoint_every: outer steps between checkpoints.
    mesh: a ``jax.sharding.Mesh`` with a ``"data"`` axis: observations and
      latents (and their Adam moments) are sharded over it, the surrogate
      parameters replicated, and XLA reduces the surrogate's gradient across
      devices (GSPMD). N must be a multiple of the axis size. Works the same
      across hosts after ``jax.distributed.initialize()``.
    init_latents: ``[N, S, L]`` latents restart 0 starts from instead of
      random ones (a warm start: e.g. the latents of a previous solve, or
      :func:`blindinv_jax.prior.project` of another method's estimates, as
      ``experiment``'s ``"blind_ica"`` does); other restarts stay random.

  Returns:
    A :class:`SolveResult`. If a loss or the state becomes NaN/Inf, the solve
    stops there, keeps the last finite state, warns, and says so in
    ``result.message``; it never returns NaN silently.
  """
  import warnings
  config = config.validate()
  y = validate_observations(y, prior, num_sources)
  module = make_surrogate(surrogate, y.shape[-1])
  check_surrogate(module, prior, num_sources, y.shape[-1])
  check_positive_int("checkpoint_every", checkpoint_every)
  warn_if_out_of_range(y)
  key = jax.random.key(0) if key is None else key
  y_host = y
  step_fn = outer_step
  if config.batch_size is not None and config.batch_size < y.shape[0]:
    step_fn = minibatch_outer_step
  y = jnp.asarray(y)
  if init_latents is not None:
    init_latents = np.asarray(init_latents, np.float32)
    want = (y.shape[0], num_sources, prior.latent_dim)
    if init_latents.shape != want:
      raise ValueError(f"init_latents must be [N, S, L] = {list(want)}, got "
                       f"shape {list(init_latents.shape)}.")
    if not np.all(np.isfinite(init_latents)):
      raise ValueError("init_latents contains NaN or Inf.")
  state = init_state(key, y, prior, module, config, num_sources, init_latents)
  history = []
  ckpt = None
  if checkpoint_dir is not None:
    import pathlib
    ckpt = pathlib.Path(checkpoint_dir) / "solve_state.ckpt"
    identity = _solve_identity(y_host, prior, module, config, num_sources, key,
                               init_latents)
    if ckpt.exists():
      state, history = _load_solve(ckpt, state, identity)
  if mesh is not None:
    y, state = shard(mesh, y, state)
  message = ""
  for t in range(int(state.step), config.outer_steps):
    state, metrics = step_fn(state, y, prior, module, config)
    metrics = jax.device_get(metrics)
    if not metrics.pop("finite"):
      bad = [k.replace("_", " ") for k in LOSS_KEYS
             if not np.all(np.isfinite(metrics[k]))] or ["the state"]
      message = (f"stopped at outer step {t + 1} of {config.outer_steps}: "
                 f"{' and '.join(bad)} became NaN or Inf; returning the "
                 f"state after step {t}. Lower the learning rates or check "
                 "the observations' scale.")
      warnings.warn(message, RuntimeWarning, stacklevel=2)
      break
    history.append(metrics)
    if callback is not None:
      callback(t + 1, metrics)
    if ckpt is not None and ((t + 1) % checkpoint_every == 0 or
                             t + 1 == config.outer_steps):
      _save_solve(ckpt, state, history, identity)
  history = {k: jnp.asarray(v) for k, v in
             _stack_history(history, config.restarts).items()}
  x, z, params, y_hat, best = finalize(state, y, prior, module)
  return SolveResult(sources=x, latents=z, surrogate_params=params,
                     reconstruction=y_hat, history=history, best_restart=best,
                     state=state, surrogate=module, message=message)
