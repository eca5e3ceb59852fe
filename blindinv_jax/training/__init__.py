"""Training priors on clean signals: one loop (:mod:`.loop`) for every
family, the DCGAN's step (:mod:`.gan`) and the VAE's (:mod:`.vae`)."""
from blindinv_jax.training.gan import (  # noqa: F401
    TrainState,
    discriminator_loss,
    init_train_state,
    make_train_step,
)
from blindinv_jax.training.loop import (  # noqa: F401
    TrainConfig,
    batch_indices,
    family_of,
    step_key,
    train_identity,
    train_prior,
)
