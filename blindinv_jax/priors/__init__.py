"""Priors of clean signals: what the solver, the baselines, projection, the
CLI and the experiments take as ``prior``.

A prior is a pytree with ``generate(z)`` (latents ``[..., latent_dim]`` ->
images ``[..., H, W, C]``), ``latent_dim``, ``image_shape``,
``sample_latents(key, shape)``, ``project_latents(z, clip)`` (the projection
P after every latent step) and ``has_discriminator`` (with
``discriminate(x)`` -> logits, for the perceptual term); see
:mod:`blindinv_jax.priors.base` and ``docs/priors.md``.

* :func:`from_flax`, :func:`from_function`: a user's generator as a prior;
* :class:`GANPrior`: the project's DCGANs (``load_prior("mnist")``);
* :class:`VAEPrior`: the project's VAEs (a decoder, standard-normal latents);
* :func:`load_prior` reads any of them from a shipped name, a file or a
  workdir, by the checkpoint's kind (the registry in
  :mod:`blindinv_jax.priors.io`, which each family fills when imported here);
  :func:`resolve` also takes ``"module.path:factory"``.
"""
from blindinv_jax.priors.base import (  # noqa: F401
  GeneratorPrior,
  check_prior,
  from_flax,
  from_function,
)
from blindinv_jax.priors.dcgan import (  # noqa: F401  (registers its kinds)
  PRIOR_KIND,
  TRAIN_KIND,
  GANPrior,
  save_prior,
)
from blindinv_jax.priors.io import (  # noqa: F401
  ALIASES,
  SHIPPED,
  load_prior,
  register_kind,
  shipped_names,
)
from blindinv_jax.priors.vae import VAEPrior  # noqa: F401  (registers its kinds)


def resolve(spec):
  """A prior from ``spec``: a prior object (returned as it is), a shipped
  name (``"mnist"``), a checkpoint file or train-prior workdir, or
  ``"module.path:factory"``: ``factory()`` of an importable module (the
  module is found on ``sys.path``, which includes the working directory)."""
  import importlib
  import pathlib
  import sys
  if not isinstance(spec, (str, pathlib.Path)):
    check_prior(spec)
    return spec
  text = str(spec)
  if (":" in text and text not in shipped_names() and
      not pathlib.Path(text).exists()):
    module_name, _, attr = text.partition(":")
    if "" not in sys.path:
      sys.path.insert(0, "")                  # the working directory
    try:
      module = importlib.import_module(module_name)
    except ImportError as e:
      raise ValueError(f"--prior {text!r}: cannot import module "
                       f"{module_name!r} ({e}); give 'module.path:factory' "
                       "with the module on the Python path.") from e
    factory = getattr(module, attr, None)
    if not callable(factory):
      raise ValueError(f"--prior {text!r}: module {module_name!r} has no "
                       f"function {attr!r}.")
    prior = factory()
    check_prior(prior)
    return prior
  return load_prior(text)
