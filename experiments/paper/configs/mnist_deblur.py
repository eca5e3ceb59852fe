"""Figure 1a on MNIST: blind deblurring of held-out digits (9x9 Gaussian, sigma 2).

  python experiments/paper/reproduce.py --config experiments/paper/configs/mnist_deblur.py \
      --workdir runs/mnist_deblur [--schedule paper]

50 held-out mnist5k test digits, the shipped prior, the linear 2-layer conv
surrogate; baselines PGD (no F), Wiener and PGD with the true blur.
"""
from blindinv_jax import experiment as E, solver


def get_config() -> E.ExperimentConfig:
  return E.ExperimentConfig(
      name="mnist_deblur",
      title="Blind deblurring, MNIST (9x9 Gaussian, sigma 2)",
      data=E.DataSpec(source="mnist5k", split="test", n=50),
      task=E.TaskSpec(kind="blur", kernel_size=9, sigma=2.0),
      prior="mnist", classify=True, surrogate="conv", solver=solver.TUNED,
      methods=("blind", "pgd", "pgd_known", "wiener"),
      wiener_balance=1e-8)  # best of 1e-8..1e-4 on 50 val digits (noise-free)
