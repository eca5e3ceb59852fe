"""Blind inpainting of held-out digits: one unknown mask for every
observation, 40% of the pixels lost at random (a lost pixel reads 0, mid
grey on the prior's [-1, 1] scale).

  python experiments/paper/reproduce.py \
      --config=experiments/paper/configs/mnist_inpaint.py \
      --workdir=runs/mnist_inpaint

Thick scratches instead: ``--config.task.mask_kind=scratches``. The
paper's schedule: ``--config=...mnist_inpaint.py:paper``. Four latent
restarts per observation after the solve (chosen on 50 val digits, +1.67
dB; docs/results.md): ``--config.methods=blind,blind_refine,pgd_known,
pgd_known_refine,pgd,biharmonic``.

50 held-out mnist5k test digits, the shipped prior, the ``mask`` surrogate
(a per-pixel gain and offset shared by every observation; ``auto`` does not
screen it yet on the prior's own grid, docs/results.md). Baselines: PGD
with no F, biharmonic inpainting given the true mask (scikit-image, the
``experiments`` extra) and PGD with the true mask.
"""
from blindinv_jax.config import TUNED
from blindinv_jax.options import experiment_config


def get_config(schedule=None):
  c = experiment_config("mnist_inpaint",
                        "Blind inpainting, MNIST (one unknown mask)",
                        solver=TUNED, schedule=schedule)
  c.data.update(source="mnist5k", split="test", n=50)
  c.task.update(kind="mask", mask_kind="random", missing=0.4)
  c.update(prior="mnist", classify=True, surrogate="mask",
           methods="blind,pgd,pgd_known,biharmonic")
  return c
