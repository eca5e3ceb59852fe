"""Priors of clean signals: what the solver, the baselines and projection
take as ``prior``.

A prior is a pytree with ``generate(z)`` (latents ``[..., latent_dim]`` ->
images ``[..., H, W, C]``), ``discriminate(x)`` (logits, for the perceptual
term), ``sample_latents(key, shape)``, ``latent_dim`` and ``image_shape``.
Today the one implementation is the project's DCGAN (:class:`GANPrior`).
"""
from blindinv_jax.priors.dcgan import (  # noqa: F401
    PRIOR_KIND,
    SHIPPED,
    TRAIN_KIND,
    GANPrior,
    load_prior,
    save_prior,
)
