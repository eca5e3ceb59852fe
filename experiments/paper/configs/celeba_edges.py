"""Figure 1b as in the paper: CelebA faces from their Sobel edge maps.

Needs tfds CelebA prepared in DATA_DIR and a CELEBA64 prior (see
celeba_deblur.py):

  python experiments/paper/reproduce.py --config experiments/paper/configs/celeba_edges.py \
      --workdir runs/celeba_edges --prior runs/prior_celeba --data-dir DATA_DIR
"""
from blindinv_jax import experiment as E, solver


def get_config() -> E.ExperimentConfig:
  return E.ExperimentConfig(
      name="celeba_edges",
      title="Blind edge-map inversion, CelebA (Sobel)",
      data=E.DataSpec(source="tfds:celeb_a", split="test", n=50),
      task=E.TaskSpec(kind="edges"),
      prior="runs/prior_celeba", surrogate="conv", solver=solver.PAPER,
      methods=("blind", "pgd", "pgd_known"), background=0.0)
