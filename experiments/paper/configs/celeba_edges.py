"""Figure 1b as in the paper: CelebA faces from their Sobel edge maps.

Needs tfds CelebA prepared in DATA_DIR and a CELEBA64 prior (see
celeba_deblur.py):

  python experiments/paper/reproduce.py \
      --config=experiments/paper/configs/celeba_edges.py \
      --workdir=runs/celeba_edges --config.data.data_dir=DATA_DIR
"""
from blindinv_jax.config import PAPER
from blindinv_jax.options import experiment_config


def get_config(schedule=None):
  c = experiment_config("celeba_edges",
                        "Blind edge-map inversion, CelebA (Sobel)",
                        solver=PAPER, schedule=schedule)
  c.data.update(source="tfds:celeb_a", split="test", n=50)
  c.task.kind = "edges"
  c.update(prior="runs/prior_celeba", surrogate="conv",
           methods="blind,pgd,pgd_known", background=0.0)
  return c
