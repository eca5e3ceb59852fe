"""The former home of the prior's names, kept so that existing imports work.

New homes: :mod:`blindinv_jax.priors` (``GANPrior``, ``load_prior``,
``save_prior``), :mod:`blindinv_jax.project` (``project``) and
:mod:`blindinv_jax.training` (``TrainConfig``, ``train_prior``, ...).
"""
from blindinv_jax.priors import (  # noqa: F401
    PRIOR_KIND,
    SHIPPED,
    TRAIN_KIND,
    GANPrior,
    load_prior,
    save_prior,
)
from blindinv_jax.project import (  # noqa: F401
    project,
    project_best,
    project_init,
    project_steps,
)
from blindinv_jax.training import (  # noqa: F401
    TrainConfig,
    TrainState,
    batch_indices,
    discriminator_loss,
    init_train_state,
    make_train_step,
    step_key,
    train_prior,
)
