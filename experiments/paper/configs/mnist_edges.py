"""Figure 1b on MNIST: recovering digits from their Sobel edge maps.

  python experiments/paper/reproduce.py --config experiments/paper/configs/mnist_edges.py \
      --workdir runs/mnist_edges [--schedule paper]

50 held-out mnist5k test digits, F = the Sobel filter [[1,0,-1],[2,0,-2],
[1,0,-1]], the linear conv surrogate; baselines PGD (no F) and PGD with the
true filter (Wiener does not apply: the Sobel filter is not invertible).
"""
from blindinv_jax import experiment as E, solver


def get_config() -> E.ExperimentConfig:
  return E.ExperimentConfig(
      name="mnist_edges",
      title="Blind edge-map inversion, MNIST (Sobel)",
      data=E.DataSpec(source="mnist5k", split="test", n=50),
      task=E.TaskSpec(kind="edges"),
      prior="mnist", classify=True, surrogate="conv", solver=solver.TUNED,
      methods=("blind", "pgd", "pgd_known"))
