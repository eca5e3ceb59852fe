"""Training priors on clean signals: one loop (:mod:`.loop`) for every
family, the DCGAN's step (:mod:`.gan`) and the VAE's (:mod:`.vae`). Importing
this package imports both families, which register themselves with the loop
(:func:`register_family`); a new family does the same from its own module."""
from blindinv_jax.training import vae  # noqa: F401  (registers the VAE)
from blindinv_jax.training.gan import (  # noqa: F401  (registers the DCGAN)
    TrainState,
    discriminator_loss,
    init_train_state,
    make_train_step,
)
from blindinv_jax.training.loop import (  # noqa: F401
    FAMILIES,
    Family,
    TrainConfig,
    batch_indices,
    family_of,
    register_family,
    step_key,
    train_identity,
    train_prior,
)
