"""Figure 1b on MNIST: recovering digits from their Sobel edge maps.

  python experiments/paper/reproduce.py \
      --config=experiments/paper/configs/mnist_edges.py --workdir=runs/mnist_edges

The paper's schedule: ``--config=...mnist_edges.py:paper``. Any field can be
overridden, e.g. ``--config.data.split=val --config.data.n=16``.

50 held-out mnist5k test digits, F = the Sobel filter [[1,0,-1],[2,0,-2],
[1,0,-1]] on the scene continuing past the frame (``--config.task.boundary=
zero``: the library's earlier zero-padded simulation), the linear conv
surrogate (``conv``; ``conv_scene`` was no better on val), four restarts
with the most centred kernel kept (``select="centred"``, chosen on val);
baselines PGD (no F) and PGD with the true filter (Wiener does not apply:
the Sobel filter is not invertible).
"""
from blindinv_jax.config import TUNED
from blindinv_jax.options import experiment_config


def get_config(schedule=None):
  c = experiment_config("mnist_edges",
                        "Blind edge-map inversion, MNIST (Sobel)",
                        solver=TUNED.replace(restarts=4, select="centred"),
                        schedule=schedule)
  c.data.update(source="mnist5k", split="test", n=50)
  c.task.kind = "edges"
  c.update(prior="mnist", classify=True, surrogate="conv",
           methods="blind,pgd,pgd_known")
  return c
