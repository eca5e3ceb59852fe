"""Latent restarts per observation, under a fixed forward model.

Algorithm 1 (:mod:`blindinv_jax.algorithm`) keeps one restart for all N
observations, because the restarts differ in the surrogate they share. Once
the surrogate is fixed the observations are independent, and each one's
latents may still sit in a wrong basin of G (a 0 drawn as a C, a digit lost
in a mixture). :func:`refine_latents` gives every observation R fresh starts
through a fixed forward model: projected Adam on ``z`` with the solver's
latent schedule and loss (``L1(forward(G(z)), y) + alpha * perceptual``, the
latent phase of Algorithm 1), and keeps, per observation, whichever of the
given latents and the R new ones fits ``y`` best (L1). The given latents
are a candidate as they are, so no observation's data error can grow.

* :func:`refine_solve`: after :func:`blindinv_jax.solver.solve`, through the
  solve's surrogate ``F_hat`` (an extension of the paper, not Algorithm 1).
* :func:`refine_latents`: through any ``forward(params, x)``, e.g. a known F
  for the PGD baseline (``params=None``).
"""
from __future__ import annotations

import pathlib
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import latent, resume, runner
from blindinv_jax.algorithm import select_best
from blindinv_jax.config import TUNED, SolverConfig, for_prior
from blindinv_jax.validation import check_positive_int

#: ``forward(params, x [N, S, H, W, C]) -> y_hat [N, H, W, C_obs]``.
ParamForward = Callable[[Any, jax.Array], jax.Array]


def refine_latents(y, prior, forward: ParamForward, params, z, *,
                   restarts: int = 4, config: SolverConfig = TUNED,
                   key: Optional[jax.Array] = None, callback=None,
                   checkpoint_dir=None, checkpoint_every: int = 10):
  """Per observation, the best of ``z`` and ``restarts`` fresh latent starts.

  Args:
    y: observations ``[N, H, W, C_obs]``.
    prior: the GAN prior.
    forward: ``forward(params, x)`` from sources ``[N, S, H, W, C]`` to
      observations, e.g. a :class:`blindinv_jax.latent.ParamForward`; a
      static argument (pass the same function object to avoid recompiling).
    params: its parameters (a pytree, or ``None``).
    z: the latents to improve on, ``[N, S, L]``.
    restarts: R, fresh starts per observation (from the prior's latent
      distribution).
    config: the latent schedule: ``outer_steps * latent_steps`` projected
      Adam steps at ``latent_lr`` (and its decay), with ``alpha``, ``loss``,
      ``clip``, ``unroll``, ``grad_pieces`` and ``precision``, run by
      :mod:`blindinv_jax.runner` as :func:`blindinv_jax.baselines.pgd` is.
    key: PRNG key of the fresh starts (default ``key(1)``).
    callback: called as ``callback(chunk, chunks)`` after every
      ``latent_steps`` steps.
    checkpoint_dir: if given, the fresh starts' latents and Adam state are
      saved there (``refine_state.ckpt``) every ``checkpoint_every``
      chunks, and a run started where such a checkpoint exists resumes from
      it, bit for bit.

  Returns:
    ``(z [N, S, L], picked [N], error [N])``: the kept latents, which
    candidate each observation kept (0: the given ``z``; r >= 1: fresh
    start r) and its L1 data error.
  """
  check_positive_int("refine_latents: restarts", restarts)
  config = for_prior(config.validate(), prior)
  y = jnp.asarray(y)
  z = jnp.asarray(z)
  if z.ndim != 3 or z.shape[0] != y.shape[0]:
    raise ValueError(f"refine_latents: z must be [N, S, L] with N = "
                     f"{y.shape[0]} observations, got shape {tuple(z.shape)}.")
  key = jax.random.key(1) if key is None else key
  fresh = prior.sample_latents(key, (restarts,) + tuple(z.shape[:2]))
  ckpt = None
  if checkpoint_dir is not None:
    check_positive_int("checkpoint_every", checkpoint_every)
    ckpt = runner.Checkpoint(
        pathlib.Path(checkpoint_dir) / "refine_state.ckpt",
        kind="refine_state", every=checkpoint_every,
        identity=latent.identity(
            y, prior, config, key, int(z.shape[1]), restarts=restarts,
            forward=latent.describe(forward), latents=resume.fingerprint(z),
            params=resume.fingerprint(*jax.tree_util.tree_leaves(params))))
  out = runner.run(latent.step, latent.init(fresh, config), y, params,
                   prior=prior, steps=config.outer_steps,
                   settings=runner.Settings.of(config),
                   static={"forward": forward, "config": config},
                   unit="outer step", checkpoint=ckpt,
                   callback=None if callback is None else
                   (lambda t, _: callback(t, config.outer_steps)))
  fresh = out.state.z
  cand = jnp.concatenate([z[None].astype(fresh.dtype), fresh])
  err = runner.jitted(latent.observation_errors, ("forward",))(
      cand, params, y, prior, forward)                            # [R+1, N]
  z_best, picked = select_best(err, cand)
  return z_best, picked, jnp.min(err, axis=0)


def refine_solve(result, y, prior, *, restarts: int = 4,
                 config: Optional[SolverConfig] = None,
                 key: Optional[jax.Array] = None, callback=None):
  """:func:`refine_latents` through a solve's surrogate ``F_hat_theta``.

  Args:
    result: a :class:`blindinv_jax.solver.SolveResult`.
    y: the observations it solved, ``[N, H, W, C_obs]``.
    prior: the prior it solved with.
    restarts, key, callback: as :func:`refine_latents`.
    config: the latent schedule (default: ``TUNED``'s; pass the solve's
      config to keep its latent step size, loss and alpha).

  Returns:
    ``(result, picked [N])``: the result with ``sources [N, S, H, W, C]``,
    ``latents`` and ``reconstruction`` replaced (the surrogate is
    unchanged), and which candidate each observation kept (0: the solve's).
  """
  if getattr(result, "deviations", None) is not None:
    raise ValueError("refine restarts the latents z of a solve whose "
                     "recoveries are G(z); this solve ran with a range "
                     "extension (SolverConfig.extension), whose recoveries "
                     "also hold deviations: refine a solve without it.")
  config = TUNED if config is None else config
  forward = latent.ParamForward(surrogate=result.surrogate)
  z, picked, _ = refine_latents(y, prior, forward, result.surrogate_params,
                                result.latents, restarts=restarts,
                                config=config, key=key, callback=callback)
  x = prior.generate(z)
  y_hat = forward(result.surrogate_params, x)
  return result.replace(sources=x, latents=z, reconstruction=y_hat), picked


def picked_summary(picked) -> str:
  """"kept the given latents for 12 of 25 observations; fresh starts for
  13" from :func:`refine_latents`' ``picked [N]``."""
  picked = np.asarray(picked)
  same = int(np.sum(picked == 0))
  return (f"kept the given latents for {same} of {picked.size} observations; "
          f"a fresh start for {picked.size - same}")
