"""The third MNIST prior (``load_prior("mnist-v3")``): the first prior's
``mnist28`` architecture (thin strokes) with the second's EMA generator, on
the first 4,000 train digits only (the last 500 are ``val``, which chose the
snapshot, EMA step 8,000; the 500 ``test`` digits report it). Not the
default ``"mnist"``; its measurements are in docs/results.md#the-priors and
docs/notes/2026-11-27-mnist-v3.md.

Run (this is the exact command that trained blindinv_jax/assets/mnist_prior_v3.ckpt,
then shipped by experiments/assets/ship_prior.py):

  blindinv train-prior --config experiments/assets/prior_mnist_ema28.py \
      --workdir runs/prior_mnist_ema28

A killed run resumes where it stopped when the same command is run again.
Score its snapshots on val, and the best against the shipped priors on test:

  python experiments/assets/prior_quality.py --workdir runs/prior_mnist_ema28 \
      --prior mnist-v1 --prior mnist-v2
"""
from blindinv_jax.training import TrainConfig


def get_config() -> TrainConfig:
  return TrainConfig(
      model="mnist28",
      data="mnist5k",
      split="train",
      limit=4000,
      batch_size=64,
      steps=10_000,
      lr=2e-4,
      b1=0.5,
      seed=0,
      ema_decay=0.999,
      sample_every=1000,
      checkpoint_every=250,
      snapshot_every=500,
  )
