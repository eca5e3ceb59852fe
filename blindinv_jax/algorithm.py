"""Algorithm 1 of the paper, and nothing else.

Notation (the paper's Algorithm 1 and section 3.1):

* ``y_j``: the N observations, ``y [N, H, W, C_obs]``;
* ``G`` (and ``D``): the prior's generator (and discriminator); ``z [N, S,
  L]`` holds the latents of the S sources behind each observation;
* ``F_hat``: the surrogate of the unknown process F, parameters ``theta``;
* ``T`` outer steps, each ``T1`` Adam steps on ``theta`` (step size
  ``lambda_1``) then ``T2`` Adam steps on ``z`` (step size ``lambda_2``);
* ``P``: the projection onto the latent domain, the prior's
  ``project_latents`` (the paper's GANs: a clip to ``[-1, 1]``);
* the loss ``L(theta, z) = sum_j |F_hat(G(z_j)) - y_j|_1 + alpha *
  sum_j sum_i log(1 - D(G(z_ij)))``.

Algorithm 1, as the functions below write it::

    init_state                      theta, z ~ p(z)            (R restarts)
    for t in 1..T:                  outer_step
      x* = G(z)                     (computed once per phase)
      repeat T1: theta <- Adam(theta, grad_theta L(theta, z))  surrogate_phase
      repeat T2: z <- P(Adam(z, grad_z L(theta, z)))          latent_phase
    keep the restart with the lowest data loss                select_best

Every function is pure: no I/O, no jit, no backend branches. The inner
loops' ``unroll`` is an argument (the runner passes the backend's), and G
and D run in whatever arithmetic the given prior has; how the latent
gradient is split and how restarts are mapped is asked of
:mod:`blindinv_jax.backend`. Running, jitting, checkpointing and
minibatching live in :mod:`blindinv_jax.runner`, :mod:`blindinv_jax.solver`
and :mod:`blindinv_jax.minibatch`.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import flax
import jax
import jax.numpy as jnp
import optax

from blindinv_jax import backend
from blindinv_jax.config import SolverConfig


class SolverState(flax.struct.PyTreeNode):
  """Everything Algorithm 1 carries between outer steps.

  z: latents ``[R, N, S, L]``; surrogate_params / surrogate_opt: one
  surrogate per restart (leading axis R); latent_opt: Adam state of z; step:
  outer steps done; key: the solve's PRNG key.
  """
  z: jax.Array
  surrogate_params: Any
  surrogate_opt: Any
  latent_opt: Any
  step: jax.Array
  key: jax.Array


# ---------------------------------------------------------------- the loss

def stack_sources(x: jax.Array) -> jax.Array:
  """Sources ``[..., S, H, W, C]`` -> surrogate input ``[..., H, W, S*C]``."""
  x = jnp.moveaxis(x, -4, -2)                     # [..., H, W, S, C]
  return x.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])


def data_loss(y_est: jax.Array, y: jax.Array, kind: str,
              weights: Optional[jax.Array] = None) -> jax.Array:
  """``sum_j |y_est_j - y_j|_1`` (or the squared L2 error); ``weights [N]``
  (0 or 1) leave out padding observations of a minibatch."""
  d = y_est - y
  e = jnp.abs(d) if kind == "l1" else d * d
  if weights is None:
    return jnp.sum(e)
  return jnp.sum(jnp.sum(e, axis=tuple(range(1, e.ndim))) * weights)


def perceptual_loss(prior, x: jax.Array,
                    weights: Optional[jax.Array] = None) -> jax.Array:
  """``sum_ij log(1 - D(x_ij))`` over sources ``x [N, S, H, W, C]``, written
  ``-softplus(logit)``."""
  per = -jax.nn.softplus(prior.discriminate(x))           # [N, S]
  if weights is None:
    return jnp.sum(per)
  return jnp.sum(per * weights[:, None])


# -------------------------------------------------------------- optimisers

def surrogate_optimizer(config: SolverConfig) -> optax.GradientTransformation:
  """Adam on theta, step size lambda_1 (its state persists across steps)."""
  return optax.adam(config.surrogate_lr)


def latent_optimizer(config: SolverConfig) -> optax.GradientTransformation:
  """Adam on z, step size lambda_2, optionally cosine-decayed over all
  ``T * T2`` latent steps (the count lives in the optimiser state)."""
  if config.latent_lr_end is None:
    return optax.adam(config.latent_lr)
  total = config.outer_steps * config.latent_steps
  return optax.adam(optax.cosine_decay_schedule(
      config.latent_lr, total, alpha=config.latent_lr_end / config.latent_lr))


def projected_adam_step(z, opt, grad: jax.Array,
                        tx: optax.GradientTransformation, project: Callable):
  """One step ``z <- P(Adam(z, grad))``, ``project`` the projection P."""
  upd, opt = tx.update(grad, opt, z)
  return project(optax.apply_updates(z, upd)), opt


def projected_adam(z, opt, grad_fn: Callable, tx, project: Callable,
                   steps: int, unroll):
  """``steps`` projected Adam steps on z (a ``fori_loop``): ``(z, opt)``."""
  def body(_, carry):
    z, opt = carry
    return projected_adam_step(z, opt, grad_fn(z), tx, project)
  return jax.lax.fori_loop(0, steps, body, (z, opt), unroll=unroll)


# ------------------------------------------------------------------ phases

def surrogate_phase(params, opt, x_stacked, y, surrogate, config: SolverConfig,
                    unroll, weights=None):
  """T1 Adam steps on theta with the sources fixed (``x* = G(z)`` stacked).

  x_stacked: ``[N, H, W, S*C]``; y: ``[N, H, W, C_obs]``; weights: ``[N]``
  or None. Returns ``(params, opt, data loss at the final theta)``.
  """
  tx = surrogate_optimizer(config)
  loss_fn = lambda p: data_loss(surrogate.apply(p, x_stacked), y, config.loss,
                                weights)

  def body(_, carry):
    params, opt = carry
    upd, opt = tx.update(jax.grad(loss_fn)(params), opt, params)
    return optax.apply_updates(params, upd), opt

  params, opt = jax.lax.fori_loop(0, config.surrogate_steps, body,
                                  (params, opt), unroll=unroll)
  return params, opt, loss_fn(params)


def project_latents(z, opt, forward, y, prior, config: SolverConfig, unroll,
                    weights=None):
  """T2 projected Adam steps on z ``[N, S, L]`` minimising ``data_loss(
  forward(G(z)), y) + alpha * perceptual_loss(G(z))`` with theta fixed.

  forward: sources ``[N, S, H, W, C]`` -> observations ``[N, H, W, C_obs]``,
  observation by observation (the surrogate in Algorithm 1, a known F in the
  PGD baselines). Returns ``(z, opt, (data loss, perceptual) at the final z)``.
  """
  def losses(z, y, weights):
    x = prior.generate(z)                                 # [n, S, H, W, C]
    dl = data_loss(forward(x), y, config.loss, weights)
    per = (perceptual_loss(prior, x, weights) if config.alpha > 0
           else jnp.zeros(()))
    return dl + config.alpha * per, (dl, per)

  grad_fn = lambda z: backend.piecewise_grad(
      lambda z, y, weights: losses(z, y, weights)[0], z, y, weights,
      config.grad_pieces)
  project = lambda z: prior.project_latents(z, config.clip)
  z, opt = projected_adam(z, opt, grad_fn, latent_optimizer(config), project,
                          config.latent_steps, unroll)
  return z, opt, losses(z, y, weights)[1]


def latent_phase(z, opt, params, y, prior, surrogate, config: SolverConfig,
                 unroll, weights=None):
  """T2 projected Adam steps on one restart's z ``[N, S, L]`` through the
  surrogate ``F_hat_theta`` (:func:`project_latents`)."""
  forward = lambda x: surrogate.apply(params, stack_sources(x))
  return project_latents(z, opt, forward, y, prior, config, unroll, weights)


# --------------------------------------------------------------- the steps

def init_state(key, y, prior, surrogate, config: SolverConfig,
               num_sources: int, init_latents=None) -> SolverState:
  """z from the prior's latent distribution and a fresh theta per restart.
  ``init_latents``, if given, replaces restart 0's z (``[N, S, L]``) or
  every restart's (``[R, N, S, L]``), projected by P."""
  r, n = config.restarts, y.shape[0]
  kz, ks = jax.random.split(jax.random.fold_in(key, 0))
  z = prior.sample_latents(kz, (r, n, num_sources))
  if init_latents is not None:
    z0 = prior.project_latents(jnp.asarray(init_latents, z.dtype), config.clip)
    z = z0 if z0.ndim == z.ndim else z.at[0].set(z0)
  h, w, c = prior.image_shape
  x_like = jnp.zeros((1, h, w, num_sources * c), y.dtype)
  params = jax.vmap(lambda k: surrogate.init(k, x_like))(
      jax.random.split(ks, r))
  s_opt = jax.vmap(surrogate_optimizer(config).init, axis_size=r)(params)
  z_opt = jax.vmap(latent_optimizer(config).init)(z)
  return SolverState(z=z, surrogate_params=params, surrogate_opt=s_opt,
                     latent_opt=z_opt, step=jnp.zeros((), jnp.int32), key=key)


def outer_step(state: SolverState, y, prior, surrogate, config: SolverConfig,
               unroll=1):
  """One outer step of Algorithm 1 (T1 surrogate + T2 latent steps) for
  every restart. Returns ``(state, metrics)``: see :func:`guard_step`.

  y: ``[N, H, W, C_obs]``; surrogate and config are static under jit;
  unroll: the inner ``fori_loop``\ s' (:func:`blindinv_jax.backend.
  resolve_unroll`). The runner (:mod:`blindinv_jax.runner`) passes the
  backend's unroll and the prior at ``config.precision``."""
  def one_restart(z, params, s_opt, z_opt):
    x_stacked = stack_sources(prior.generate(z))          # x* = G(z), once
    params, s_opt, s_loss = surrogate_phase(params, s_opt, x_stacked, y,
                                            surrogate, config, unroll)
    z, z_opt, (dl, per) = latent_phase(z, z_opt, params, y, prior, surrogate,
                                       config, unroll)
    return z, params, s_opt, z_opt, (s_loss, dl, per)

  *taken, losses = backend.map_restarts(
      one_restart, state.z, state.surrogate_params, state.surrogate_opt,
      state.latent_opt)
  return guard_step(state, tuple(taken), losses, y.size)


def guard_step(state: SolverState, taken, losses, n_pix):
  """Per-restart metrics of a step, and its numerical-safety rule.

  taken: the new ``(z, params, surrogate_opt, latent_opt)``; losses: the
  summed ``(surrogate, latent data, perceptual)`` losses ``[R]``. Metrics:
  ``surrogate_loss`` and ``latent_loss`` per observation pixel,
  ``perceptual`` per source, and ``finite``: if any loss or any part of the
  new state is NaN or Inf the step is not taken (the state stays).
  """
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


def select_best(loss: jax.Array, tree):
  """The restart with the lowest loss: ``loss [R]`` picks one restart for
  all leaves ``[R, ...]``; ``loss [R, N]`` picks per column n from leaves
  ``[R, N, ...]``. Returns ``(picked tree, best index [] or [N])``."""
  best = jnp.argmin(loss, axis=0)
  if loss.ndim == 1:
    return jax.tree_util.tree_map(lambda a: a[best], tree), best

  def pick(a):
    idx = best.reshape((1,) + best.shape + (1,) * (a.ndim - loss.ndim))
    return jnp.take_along_axis(a, idx, axis=0)[0]
  return jax.tree_util.tree_map(pick, tree), best


def final_estimates(state: SolverState, y, prior, surrogate, eligible=None):
  """Algorithm 1's output from the restart with the lowest L1 data loss
  (among the ``eligible [R]`` ones, a bool mask, if given):
  ``(sources [N, S, H, W, C], z [N, S, L], theta, F_hat(G(z)), best)``."""
  x = jax.vmap(prior.generate)(state.z)                 # [R, N, S, H, W, C]
  y_hat = jax.vmap(lambda p, x: surrogate.apply(p, stack_sources(x)))(
      state.surrogate_params, x)
  err = jnp.sum(jnp.abs(y_hat - y[None]), axis=tuple(range(1, y.ndim + 1)))
  if eligible is not None:
    err = jnp.where(eligible, err, jnp.inf)
  (x, z, params, y_hat), best = select_best(
      err, (x, state.z, state.surrogate_params, y_hat))
  return x, z, params, y_hat, best
