"""The shipped MNIST prior (``load_prior("mnist")``, also ``"mnist-v1"``):
MNIST28 DCGAN on the embedded mnist5k train split.

Run (this is the command that trained blindinv_jax/assets/mnist_prior_v1.ckpt;
its file records it under its old path, experiments/configs/prior_mnist.py):

  blindinv train-prior --config experiments/assets/prior_mnist_v1.py \
      --workdir runs/prior_mnist_v1

A killed run resumes where it stopped when the same command is run again.
"""
from blindinv_jax.training import TrainConfig


def get_config() -> TrainConfig:
  return TrainConfig(
      model="mnist28",
      data="mnist5k",
      split="train",
      batch_size=64,
      steps=10_000,
      lr=2e-4,
      b1=0.5,
      seed=0,
      sample_every=500,
      checkpoint_every=250,
      snapshot_every=1000,
  )
