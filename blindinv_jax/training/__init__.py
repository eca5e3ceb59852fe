"""Training priors on clean signals (today: the DCGAN of
:mod:`blindinv_jax.training.gan`)."""
from blindinv_jax.training.gan import (  # noqa: F401
    TrainConfig,
    TrainState,
    batch_indices,
    discriminator_loss,
    init_train_state,
    make_train_step,
    step_key,
    train_identity,
    train_prior,
)
