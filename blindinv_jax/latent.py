"""Projected Adam on the latents under a fixed forward model.

Algorithm 1's latent phase with theta frozen: the step that the PGD
baselines (:func:`blindinv_jax.baselines.pgd`, a known F or none), the
latent restarts after a solve (:mod:`blindinv_jax.refine`) and the
population experiment share. The runner (:mod:`blindinv_jax.runner`) runs
it; this module only says what one step is.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from blindinv_jax import backend, resume
from blindinv_jax.algorithm import (
  latent_optimizer,
  project_latents,
  stack_sources,
)
from blindinv_jax.config import SolverConfig, as_identity


class LatentState(flax.struct.PyTreeNode):
  """Latents ``z [R, N, S, L]`` of R starts and their Adam state ``opt``."""
  z: jax.Array
  opt: Any


@dataclasses.dataclass(frozen=True)
class ParamForward:
  """``forward(params, x)``: sources ``[N, S, H, W, C]`` -> observations
  ``[N, H, W, C_obs]``, either through a surrogate module
  (``surrogate.apply(params, stack_sources(x))``) or a known ``forward(x)``
  (``params`` unused). Hashable by the module or the function, so equal
  forward models share one compiled program."""
  surrogate: Optional[nn.Module] = None
  known: Optional[Callable[[jax.Array], jax.Array]] = None

  def __call__(self, params, x: jax.Array) -> jax.Array:
    if self.surrogate is not None:
      return self.surrogate.apply(params, stack_sources(x))
    return self.known(x)


def describe(forward) -> str:
  """A forward model's name for a run's identity: a surrogate's repr, or a
  function's qualified name (two functions of one name are not told
  apart)."""
  if isinstance(forward, ParamForward):
    return (repr(forward.surrogate) if forward.surrogate is not None else
            describe(forward.known))
  return getattr(forward, "__qualname__", type(forward).__name__)


def init(z: jax.Array, config: SolverConfig) -> LatentState:
  """The state of starts ``z [R, N, S, L]``: fresh Adam moments per start."""
  return LatentState(z=z, opt=jax.vmap(latent_optimizer(config).init)(z))


def step(state: LatentState, y: jax.Array, params, *, prior,
         forward: ParamForward, config: SolverConfig, unroll=1):
  """``config.latent_steps`` projected Adam steps on every start's latents
  through ``forward(params, .)`` (:func:`blindinv_jax.algorithm.
  project_latents`): the latent loss and schedule of Algorithm 1.

  y: ``[N, H, W, C_obs]``. Returns ``(state, {"data_loss": [R]})``.
  """
  fwd = lambda x: forward(params, x)

  def one_start(z1, opt1):
    z1, opt1, (dl, _) = project_latents(z1, opt1, fwd, y, prior, config,
                                        unroll)
    return z1, opt1, dl

  z, opt, loss = backend.map_restarts(one_start, state.z, state.opt)
  return LatentState(z=z, opt=opt), {"data_loss": loss}


def identity(y, prior, config: SolverConfig, key, num_sources: int,
             **extra) -> dict:
  """What a latent-only run's checkpoint must match (JSON): observations,
  prior, key, S, the latent schedule (``outer_steps`` may grow when the
  step size is constant) and ``extra`` (e.g. the forward model's name, the
  latents a refinement starts from)."""
  from blindinv_jax import __version__
  cfg = {f: v for f, v in as_identity(config).items()
         if f not in ("surrogate_steps", "surrogate_lr", "batch_size")}
  if config.latent_lr_end is None:      # else the decay depends on T
    cfg.pop("outer_steps")              # a resumed run may run longer
  return {"config": cfg, "num_sources": num_sources,
          "key": resume.fingerprint(jax.random.key_data(key)),
          "observations": resume.fingerprint(y),
          "prior": resume.fingerprint(*jax.tree_util.tree_leaves(prior)),
          "package_version": __version__, **extra}


def observation_errors(z, params, y, prior, forward: ParamForward):
  """L1 data error ``sum |forward(G(z)) - y|`` per start and observation:
  z ``[R, N, S, L]``, y ``[N, H, W, C_obs]`` -> ``[R, N]``."""
  def one_start(z1):
    return jnp.sum(jnp.abs(forward(params, prior.generate(z1)) - y),
                   axis=tuple(range(1, y.ndim)))
  return jax.lax.map(one_start, z)
