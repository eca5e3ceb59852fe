"""Flax Linen models: the DCGAN prior (and, later, the surrogates)."""
from blindinv_jax.models.dcgan import (  # noqa: F401
    CELEBA64,
    MNIST28,
    PRESETS,
    TINY,
    DCGANConfig,
    Discriminator,
    Generator,
    count_params,
    get_preset,
)
