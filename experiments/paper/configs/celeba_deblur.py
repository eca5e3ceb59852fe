"""Figure 1a as in the paper: blind deblurring of CelebA faces (20x20
Gaussian, sigma 5; 64x64; surrogate 16 filters 5x5x3 then 3 filters 5x5x16).

Needs tfds CelebA prepared in DATA_DIR and a CELEBA64 prior trained with
experiments/assets/prior_celeba.py:

  blindinv train-prior --config experiments/assets/prior_celeba.py \
      --workdir runs/prior_celeba --data-dir DATA_DIR
  python experiments/paper/reproduce.py --config experiments/paper/configs/celeba_deblur.py \
      --workdir runs/celeba_deblur --prior runs/prior_celeba --data-dir DATA_DIR

Uses 50 faces of the CelebA test split, the paper's schedule.
"""
from blindinv_jax import experiment as E, solver


def get_config() -> E.ExperimentConfig:
  return E.ExperimentConfig(
      name="celeba_deblur",
      title="Blind deblurring, CelebA (20x20 Gaussian, sigma 5)",
      data=E.DataSpec(source="tfds:celeb_a", split="test", n=50),
      task=E.TaskSpec(kind="blur", kernel_size=20, sigma=5.0),
      prior="runs/prior_celeba", surrogate="conv", solver=solver.PAPER,
      methods=("blind", "pgd", "pgd_known", "wiener"),
      wiener_balance=1e-3, background=0.0)
