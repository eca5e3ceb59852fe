"""The project's DCGAN priors: the frozen networks as a pytree, and their files.

* :class:`GANPrior` holds a trained generator's and discriminator's variables
  and their architecture (:class:`blindinv_jax.models.dcgan.DCGANConfig`).
  It is a pytree (variables as leaves, architecture static), so it is passed
  to jitted functions as an argument, never closed over.
* :func:`load_prior` loads ``"mnist"`` (shipped with the package: the first
  MNIST prior, also ``"mnist-v1"``; two later candidates ship as
  ``"mnist-v2"`` and ``"mnist-v3"``), a prior file, a training checkpoint or
  a training workdir; :func:`save_prior` writes a prior file.
"""
from __future__ import annotations

import json
import pathlib
from functools import partial
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import checkpoint
from blindinv_jax.models.dcgan import (
  DCGANConfig,
  Discriminator,
  Generator,
  init_variables_fn,
  sample_latents,
)
from blindinv_jax.priors.base import TrainedPrior, over_batch

PRIOR_KIND = "gan_prior"
TRAIN_KIND = "gan_train"
SHIPPED = {"mnist": "mnist_prior.ckpt", "mnist-v1": "mnist_prior_v1.ckpt",
           "mnist-v2": "mnist_prior_v2.ckpt", "mnist-v3": "mnist_prior_v3.ckpt"}
ASSETS = pathlib.Path(__file__).resolve().parent.parent / "assets"


class GANPrior(TrainedPrior, flax.struct.PyTreeNode):
  """A frozen GAN: generator and discriminator variables plus architecture.

  ``generate(z)``: z ``[..., latent_dim]`` -> images ``[..., H, W, C]``.
  ``discriminate(x)``: images ``[..., H, W, C]`` -> logits ``[...]``.
  ``sample_latents(key, shape)``: ``[*shape, latent_dim]`` uniform in
  ``[-1, 1]``; ``project_latents(z, clip)``: the clip to ``[-clip, clip]``.
  Both networks run in inference mode (BatchNorm running averages).
  """
  g_vars: Any
  d_vars: Any
  config: DCGANConfig = flax.struct.field(pytree_node=False)
  meta_json: str = flax.struct.field(pytree_node=False, default="{}")

  latent = "uniform"
  has_discriminator = True

  def generate(self, z: jax.Array) -> jax.Array:
    return over_batch(partial(Generator(self.config).apply, self.g_vars), z,
                      1, self.image_shape)

  def discriminate(self, x: jax.Array) -> jax.Array:
    return over_batch(partial(Discriminator(self.config).apply, self.d_vars),
                      x, 3)

  def sample_latents(self, key: jax.Array, shape) -> jax.Array:
    return sample_latents(key, shape, self.latent_dim)

  def project_latents(self, z: jax.Array, clip: float = 1.0) -> jax.Array:
    return jnp.clip(z, -clip, clip)


def _resolve_path(name_or_path) -> pathlib.Path:
  if not isinstance(name_or_path, (str, pathlib.Path)):
    raise ValueError("load_prior takes a prior name "
                     f"({sorted(SHIPPED)}) or a path, got {name_or_path!r}.")
  if str(name_or_path) in SHIPPED:
    path = ASSETS / SHIPPED[str(name_or_path)]
    if not path.is_file():
      raise FileNotFoundError(
          f"The shipped {name_or_path!r} prior is missing from the package "
          f"({path}); reinstall blindinv-jax or train one with "
          "`blindinv train-prior`.")
    return path
  path = pathlib.Path(name_or_path).expanduser()
  if path.is_dir():
    for cand in ("prior.ckpt", "checkpoint.ckpt"):
      if (path / cand).is_file():
        return path / cand
  if not path.exists():
    raise FileNotFoundError(
        f"No prior named or at {str(name_or_path)!r}. Use one of "
        f"{sorted(SHIPPED)}, a prior .ckpt file or a train-prior workdir.")
  return path


def load_prior(name_or_path):
  """Loads ``"mnist"`` (package data) or a checkpoint path.

  Accepts a prior file (``prior.ckpt``), a training checkpoint, or a training
  workdir (its latest checkpoint), of a DCGAN (:class:`GANPrior`) or a VAE
  (:class:`blindinv_jax.priors.vae.VAEPrior`). The architecture comes from
  the file.
  """
  from blindinv_jax.priors import vae
  path = _resolve_path(name_or_path)
  kind = checkpoint.read_header(path).get("kind")
  if kind not in (PRIOR_KIND, TRAIN_KIND, vae.PRIOR_KIND, vae.TRAIN_KIND):
    raise checkpoint.CheckpointError(
        f"{path} is a {kind!r} checkpoint, not a GAN prior.")
  state, meta = checkpoint.load(path, kind=kind)
  if "model" not in meta:
    raise checkpoint.CheckpointError(f"{path} does not record its model "
                                     "architecture ('model' metadata).")
  if kind in (vae.PRIOR_KIND, vae.TRAIN_KIND):
    return vae.restore(state, meta, path)
  config = DCGANConfig.from_dict(meta["model"])
  g_ref, d_ref = jax.eval_shape(partial(init_variables_fn, config),
                                jax.random.key(0))
  g_vars = restore_like(g_ref, state["g_vars"], path, "generator")
  d_vars = restore_like(d_ref, state["d_vars"], path, "discriminator")
  return GANPrior(g_vars=g_vars, d_vars=d_vars, config=config,
                  meta_json=json.dumps(meta, sort_keys=True))


def save_prior(path, prior_or_state, config: DCGANConfig, meta: dict):
  """Writes a prior file (G and D variables only, no optimiser state)."""
  tree = {"g_vars": prior_or_state.g_vars, "d_vars": prior_or_state.d_vars}
  meta = {**meta, "model": config.to_dict()}
  return checkpoint.save(path, jax.device_get(tree), kind=PRIOR_KIND,
                         meta=jsonable(meta))


def jsonable(obj):
  """``obj`` with arrays as lists and unknown objects as strings."""
  return json.loads(json.dumps(obj, default=lambda o: (
      o.tolist() if hasattr(o, "tolist") else str(o))))


def restore_like(ref, state, path, what):
  ref_shapes = jax.tree_util.tree_map(lambda a: tuple(a.shape),
                                      flax.core.unfreeze(ref))
  try:
    got = jax.tree_util.tree_map(lambda a: tuple(np.shape(a)), state)
  except Exception:  # pragma: no cover - defensive
    got = None
  if got != ref_shapes:
    raise checkpoint.CheckpointError(
        f"{path}: the {what} weights do not match the architecture recorded "
        "in the file (mismatched or corrupted checkpoint).")
  return jax.tree_util.tree_map(jnp.asarray, state)
