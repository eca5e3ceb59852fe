"""Figure 1a as in the paper: blind deblurring of CelebA faces (20x20
Gaussian, sigma 5; 64x64; surrogate 16 filters 5x5x3 then 3 filters 5x5x16).

Needs tfds CelebA prepared in DATA_DIR and a CELEBA64 prior trained with
experiments/assets/prior_celeba.py:

  blindinv train-prior --config experiments/assets/prior_celeba.py \
      --workdir runs/prior_celeba --data-dir DATA_DIR
  python experiments/paper/reproduce.py \
      --config=experiments/paper/configs/celeba_deblur.py \
      --workdir=runs/celeba_deblur --config.data.data_dir=DATA_DIR

Uses 50 faces of the CelebA test split, the paper's schedule.
"""
from blindinv_jax.config import PAPER
from blindinv_jax.options import experiment_config


def get_config(schedule=None):
  c = experiment_config(
      "celeba_deblur", "Blind deblurring, CelebA (20x20 Gaussian, sigma 5)",
      solver=PAPER, schedule=schedule)
  c.data.update(source="tfds:celeb_a", split="test", n=50)
  c.task.update(kind="blur", kernel_size=20, sigma=5.0)
  c.update(prior="runs/prior_celeba", surrogate="conv",
           methods="blind,pgd,pgd_known,wiener", wiener_balance=1e-3,
           background=0.0)
  return c
