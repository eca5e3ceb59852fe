"""The second MNIST prior (``load_prior("mnist-v2")``): the ``dcgan28_gray``
family DCGAN with an EMA generator, on the first 4,000 digits of the
embedded mnist5k train split (the last 500 train digits are the ``val``
split that chose the snapshot, EMA step 3,000; the 500 ``test`` digits
report it). Not the default ``"mnist"``; its measurements are in
docs/results.md#the-priors and docs/notes/2026-11-26-mnist-v2.md.

Run (this is the exact command that trained blindinv_jax/assets/mnist_prior_v2.ckpt):

  blindinv train-prior --config experiments/assets/prior_mnist.py \
      --workdir runs/prior_mnist

A killed run resumes where it stopped when the same command is run again.
Then choose the snapshot on val and measure it on test:

  python experiments/assets/prior_quality.py --workdir runs/prior_mnist

The first shipped prior (``load_prior("mnist-v1")``) was trained by
``experiments/assets/prior_mnist_v1.py``.
"""
from blindinv_jax.training import TrainConfig


def get_config() -> TrainConfig:
  return TrainConfig(
      model="dcgan28_gray",
      data="mnist5k",
      split="train",
      limit=4000,
      batch_size=64,
      steps=8000,
      lr=2e-4,
      b1=0.5,
      seed=0,
      ema_decay=0.999,
      sample_every=1000,
      checkpoint_every=250,
      snapshot_every=500,
  )
