"""Minibatch mode of Algorithm 1: one outer step is an epoch over shuffled
minibatches of the N observations (``SolverConfig.batch_size = B``).

For each minibatch (a ``lax.fori_loop``): the T1 surrogate steps on the
batch, with its ``G(z*)`` computed once, then the T2 latent steps on the
batch's latents. Memory grows with B, not with N.

The latents of all N observations and their Adam moments live in one array;
a batch's rows are gathered, updated and scattered back. Which leaves of the
latent optimiser's state are per-latent (the Adam moments) is asked of the
optimiser itself (:func:`latent_leaves`), not guessed from shapes.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from blindinv_jax import algorithm, backend
from blindinv_jax.config import SolverConfig


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


def latent_leaves(config: SolverConfig, opt_state):
  """A tree of bools like ``opt_state``: True where a leaf has one entry per
  latent (a copy of z's shape: Adam's moments), False for shared leaves
  (step counts)."""
  return optax.tree_utils.tree_map_params(
      algorithm.latent_optimizer(config), lambda _: True, opt_state,
      transform_non_params=lambda _: False)


def minibatch_outer_step(state: algorithm.SolverState, y, prior, surrogate,
                         config: SolverConfig, unroll=1):
  """One outer step in minibatch mode: an epoch over shuffled minibatches.

  The optimiser's step count restarts from the epoch's value for every
  batch, so each latent sees the same Adam steps as in the full-batch
  solver. Same arguments and return value as
  :func:`blindinv_jax.algorithm.outer_step`; the losses are sums over the
  epoch's batches (end of each batch's phases).
  """
  n = y.shape[0]
  idx, valid = minibatch_plan(state.key, state.step, n, config.batch_size)

  def one_restart(z, params, s_opt, z_opt):
    per_latent = latent_leaves(config, z_opt)
    on_latents = lambda f, *trees: jax.tree_util.tree_map(
        lambda is_z, *a: f(*a) if is_z else a[0], per_latent, *trees)
    shared = lambda *trees: jax.tree_util.tree_map(
        lambda is_z, full, new: full if is_z else new, per_latent, *trees)

    def body(i, carry):
      z, params, s_opt, z_opt_all, z_opt_out, s_acc, dl_acc, per_acc = carry
      ids, w = idx[i], valid[i]
      yb, zb = y[ids], z[ids]
      x_stacked = algorithm.stack_sources(prior.generate(zb))
      params, s_opt, s_loss = algorithm.surrogate_phase(
          params, s_opt, x_stacked, yb, surrogate, config, unroll, w)
      optb = on_latents(lambda a: a[ids], z_opt_all)
      zb_new, optb, (dl, per) = algorithm.latent_phase(
          zb, optb, params, yb, prior, surrogate, config, unroll, w)
      keep = w[:, None, None] > 0
      z = z.at[ids].set(jnp.where(keep, zb_new, zb))
      z_opt_all = on_latents(
          lambda full, new: full.at[ids].set(jnp.where(keep, new, full[ids])),
          z_opt_all, optb)
      return (z, params, s_opt, z_opt_all, shared(z_opt_out, optb),
              s_acc + s_loss, dl_acc + dl, per_acc + per)

    zero = jnp.zeros((), jnp.float32)
    z, params, s_opt, z_opt_all, z_opt_out, s_loss, dl, per = \
        jax.lax.fori_loop(0, idx.shape[0], body,
                          (z, params, s_opt, z_opt, z_opt, zero, zero, zero))
    # Per-latent moments from the scatters, shared leaves (step counts) from
    # the last batch (every batch ends at the same count).
    return z, params, s_opt, shared(z_opt_all, z_opt_out), (s_loss, dl, per)

  *taken, losses = backend.map_restarts(
      one_restart, state.z, state.surrogate_params, state.surrogate_opt,
      state.latent_opt)
  return algorithm.guard_step(state, tuple(taken), losses, y.size)
