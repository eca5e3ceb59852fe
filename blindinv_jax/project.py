"""Projection onto the range of a prior's generator.

``project(prior, x)`` solves, per image ``x_n``,

    z_n* = argmin_z  mean |G(z) - x_n|   subject to  z in the latent domain

(``[-1, 1]^L`` for the paper's GANs) with Algorithm 1's latent step
(projected Adam with the prior's P,
:func:`blindinv_jax.algorithm.projected_adam`) from R random starts, and
keeps the best start per image (:func:`blindinv_jax.algorithm.select_best`).
It measures how well a prior can represent a set of images (the
representation error) and turns other methods' estimates into latents.
"""
from __future__ import annotations

import pathlib
from functools import partial
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from blindinv_jax import algorithm, backend, latent, resume, runner
from blindinv_jax.validation import check_positive_int, check_prior


def l1_per_image(prior, z, x):
  """Mean ``|G(z) - x|`` per image: z ``[..., L]``, x ``[..., H, W, C]`` ->
  ``[...]``."""
  return jnp.mean(jnp.abs(prior.generate(z) - x), axis=(-3, -2, -1))


@partial(jax.jit, static_argnames=("restarts",))
def project_init(prior, x, key, lr, restarts: int):
  """Initial latents ``[R, N, L]`` (the prior's latent distribution) and
  their Adam state."""
  z = prior.sample_latents(key, (restarts, x.shape[0]))
  return z, optax.adam(lr).init(z)


def project_step(state: latent.LatentState, x, lr, *, prior, unroll,
                 steps: int):
  """``steps`` projected Adam steps on ``state.z [R, N, L]`` towards x
  ``[N, H, W, C]``; each image's gradient is taken on its own (vmapped).
  A step for :func:`blindinv_jax.runner.run`: ``(state, {})``."""
  grad_one = jax.grad(lambda z, target: l1_per_image(prior, z, target))
  grad_fn = jax.vmap(jax.vmap(grad_one), in_axes=(0, None))
  z, opt = algorithm.projected_adam(state.z, state.opt,
                                    lambda z: grad_fn(z, x), optax.adam(lr),
                                    prior.project_latents, steps, unroll)
  return latent.LatentState(z=z, opt=opt), {}


@jax.jit
def project_best(prior, x, z):
  """Per image, the start with the lowest loss: ``(G(z*), z* [N, L],
  loss [N])``."""
  loss = l1_per_image(prior, z, x[None])                 # [R, N]
  z, _ = algorithm.select_best(loss, z)
  return prior.generate(z), z, jnp.min(loss, axis=0)


def project(prior, x, steps: int = 1000, lr: float = 1e-2, *,
            key: Optional[jax.Array] = None, restarts: int = 1,
            steps_per_call: Optional[int] = None, unroll=None,
            checkpoint_dir=None, callback=None):
  """Projects images onto the range of G by projected Adam on the latents.

  Args:
    prior: a prior (e.g. ``load_prior("mnist")``).
    x: images ``[N, H, W, C]`` in ``[-1, 1]``.
    steps: Adam steps.
    lr: Adam learning rate.
    key: PRNG key for the initial latents (default ``key(0)``).
    restarts: independent initialisations per image.
    steps_per_call, unroll: how the steps run: jitted calls of
      ``steps_per_call`` steps (:mod:`blindinv_jax.runner`), each a
      ``fori_loop`` unrolled as ``unroll`` (``SolverConfig.unroll``'s
      values). ``None``: the backend's default
      (:func:`blindinv_jax.backend.default_projection_calls`).
    checkpoint_dir: if given, the latents and their Adam state are saved
      there (``project_state.ckpt``) every 10 calls, and a projection
      started where such a checkpoint exists resumes from it, bit for bit
      (``steps`` may grow; everything else must be the same).
    callback: called as ``callback(steps_done, steps)`` after every call
      (e.g. :func:`blindinv_jax.utils.count_callback`'s progress bar).

  Returns:
    ``(x_hat [N, H, W, C], z [N, latent_dim], loss [N])``.
  """
  check_prior(prior)
  x = jnp.asarray(x, jnp.float32)
  if x.ndim != 4 or tuple(x.shape[1:]) != tuple(prior.image_shape):
    raise ValueError(f"project: x must be [N, {', '.join(map(str, prior.image_shape))}]"
                     f" for this prior, got shape {tuple(x.shape)}.")
  check_positive_int("project: steps", steps)
  check_positive_int("project: restarts", restarts)
  default_calls, default_unroll = backend.default_projection_calls(steps)
  steps_per_call = check_positive_int(
      "project: steps_per_call",
      default_calls if steps_per_call is None else steps_per_call)
  settings = runner.Settings(
      unroll=default_unroll if unroll is None else unroll)
  key = jax.random.key(0) if key is None else key
  z, opt = project_init(prior, x, key, lr, restarts)
  state = latent.LatentState(z=z, opt=opt)
  ckpt = None
  if checkpoint_dir is not None:
    from blindinv_jax import __version__
    ckpt = runner.Checkpoint(
        pathlib.Path(checkpoint_dir) / "project_state.ckpt",
        kind="project_state", identity={
            "images": resume.fingerprint(x),
            "prior": resume.fingerprint(*jax.tree_util.tree_leaves(prior)),
            "key": resume.fingerprint(jax.random.key_data(key)),
            "lr": lr, "restarts": restarts,
            "steps_per_call": steps_per_call, "unroll": settings.unroll,
            "package_version": __version__})
  calls, rest = divmod(steps, steps_per_call)
  for n, k in ((calls, steps_per_call), (min(rest, 1), rest)):
    if n:
      done = 0 if k == steps_per_call else calls * steps_per_call
      out = runner.run(project_step, state, x, lr, prior=prior, steps=n,
                       settings=settings, static={"steps": k},
                       checkpoint=ckpt if k == steps_per_call else None,
                       unit="call of projection steps",
                       callback=None if callback is None else (
                           lambda t, _m, k=k, done=done: callback(
                               done + t * k, steps)))
      state = out.state
      if out.message:
        break
  return project_best(prior, x, state.z)


#: How :func:`upsampled_latents` projects (the settings ``blind_ica`` uses
#: for ICA's sources).
WARM_START = {"steps": 500, "lr": 3e-2, "restarts": 4}


def upsampled_latents(prior, y, key: Optional[jax.Array] = None
                      ) -> jax.Array:
  """Latents ``[N, 1, L]`` whose images are closest (L1) to the bicubic
  upsampling (:func:`blindinv_jax.baselines.bicubic_upsample`) of
  observations ``y [N, H/s, W/s, C]`` on a grid s times smaller than the
  prior's: where a blind super-resolution starts (:data:`WARM_START`)."""
  from blindinv_jax.baselines import bicubic_upsample
  factor = prior.image_shape[0] // np.shape(y)[1]
  _, z, _ = project(prior, bicubic_upsample(y, factor), key=key,
                    **WARM_START)
  return z[:, None]
