"""Figure 2b: four non-linear mixtures |M^T X| of three MNIST sources.

  python experiments/paper/reproduce.py \
      --config=experiments/paper/configs/mnist_sep4.py --workdir=runs/mnist_sep4

The paper's schedule: ``--config=...mnist_sep4.py:paper``. Any field can be
overridden, e.g. ``--config.data.split=val --config.data.n=16``.

25 observations of 4 mixtures each of 3 held-out mnist5k test digits, one
shared M ~ N(-0.5, 0.5) [3, 4]; the per-pixel MLP surrogate (Dense 16, ReLU,
Dense 4). Methods: the blind solver from random latents ("blind") and from
FastICA's sources projected onto the prior ("blind_ica",
``methods.ica_latents``); baselines ICA (FastICA over pixels), the naive
additive model and PGD with the true mixing.

Schedule: TUNED with the latent step size 3e-2, chosen on 16 observations of
the ``val`` split (the runs and their numbers:
``docs/notes/2026-11-26-four-mixtures-latent-step.md``).
"""
from blindinv_jax.config import TUNED
from blindinv_jax.options import experiment_config


def get_config(schedule=None):
  c = experiment_config(
      "mnist_sep4", "Blind source separation: 4 mixtures of 3 MNIST sources",
      solver=TUNED.replace(latent_lr=3e-2), schedule=schedule)
  c.data.update(source="mnist5k", split="test", n=25)
  c.task.update(kind="mix", num_sources=3, num_mixtures=4, mixing_seed=0)
  c.update(prior="mnist", classify=True, surrogate="mixing",
           methods="blind,blind_ica,naive,ica,pgd_known")
  return c
