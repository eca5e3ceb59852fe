"""Blind super-resolution of held-out digits: a Gaussian blur (7x7, sigma 1),
then every second pixel (14x14 observations of 28x28 digits).

  python experiments/paper/reproduce.py \
      --config=experiments/paper/configs/mnist_sr.py --workdir=runs/mnist_sr2

x4 (7x7 observations): ``--config.task.factor=4``; noisy:
``--config.task.noise_sigma=0.02``. The paper's schedule:
``--config=...mnist_sr.py:paper``.

50 held-out mnist5k test digits, the shipped prior; no surrogate named, so
``auto`` takes the one family whose output has the observations' grid
(``downsample``: the linear conv surrogate, then a stride-``s``
convolution, ``s`` read off the shapes). Baselines: PGD with no F, bicubic
upsampling of the observations (``jax.image.resize``) and PGD with the true
blur and downsampling.
"""
from blindinv_jax.config import TUNED
from blindinv_jax.options import experiment_config


def get_config(schedule=None):
  c = experiment_config("mnist_sr",
                        "Blind super-resolution, MNIST (7x7 Gaussian, "
                        "sigma 1, then every factor-th pixel)",
                        solver=TUNED, schedule=schedule)
  c.data.update(source="mnist5k", split="test", n=50)
  c.task.update(kind="downsample", kernel_size=7, sigma=1.0, factor=2)
  c.update(prior="mnist", classify=True, surrogate="auto",
           methods="blind,pgd,pgd_known,bicubic")
  return c
