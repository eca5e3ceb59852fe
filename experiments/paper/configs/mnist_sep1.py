"""Figure 2a: one non-linear mixture |M^T X| of three MNIST sources.

  python experiments/paper/reproduce.py \
      --config=experiments/paper/configs/mnist_sep1.py --workdir=runs/mnist_sep1

The paper's schedule: ``--config=...mnist_sep1.py:paper``. Any field can be
overridden, e.g. ``--config.data.split=val --config.data.n=16``.

25 observations, each mixing 3 held-out mnist5k test digits (75 digits) with
one shared M ~ N(-0.5, 0.5) [3, 1]; the per-pixel MLP surrogate (Dense 16,
ReLU, Dense 1). Baselines: the naive additive model and PGD with the true
mixing (ICA does not apply to one mixture of three sources).
"""
from blindinv_jax.config import TUNED
from blindinv_jax.options import experiment_config


def get_config(schedule=None):
  c = experiment_config(
      "mnist_sep1", "Blind source separation: 1 mixture of 3 MNIST sources",
      solver=TUNED, schedule=schedule)
  c.data.update(source="mnist5k", split="test", n=25)
  c.task.update(kind="mix", num_sources=3, num_mixtures=1, mixing_seed=0)
  c.update(prior="mnist", classify=True, surrogate="mixing",
           methods="blind,naive,ica,pgd_known")
  return c
