"""Figure 2a: one non-linear mixture |M^T X| of three MNIST sources.

  python experiments/paper/reproduce.py --config experiments/paper/configs/mnist_sep1.py \
      --workdir runs/mnist_sep1 [--schedule paper]

25 observations, each mixing 3 held-out mnist5k test digits (75 digits) with
one shared M ~ N(-0.5, 0.5) [3, 1]; the per-pixel MLP surrogate (Dense 16,
ReLU, Dense 1). Baselines: the naive additive model and PGD with the true
mixing (ICA does not apply to one mixture of three sources).
"""
from blindinv_jax import experiment as E, solver


def get_config() -> E.ExperimentConfig:
  return E.ExperimentConfig(
      name="mnist_sep1",
      title="Blind source separation: 1 mixture of 3 MNIST sources",
      data=E.DataSpec(source="mnist5k", split="test", n=25),
      task=E.TaskSpec(kind="mix", num_sources=3, num_mixtures=1,
                      mixing_seed=0),
      prior="mnist", classify=True, surrogate="mixing", solver=solver.TUNED,
      methods=("blind", "naive", "ica", "pgd_known"))
