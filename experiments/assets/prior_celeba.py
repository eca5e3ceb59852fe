"""CELEBA64 DCGAN prior (Radford et al. hyper-parameters) on tfds CelebA.

Needs CelebA prepared for tfds in the array_record format (docs/priors.md), then:

  blindinv train-prior --config experiments/assets/prior_celeba.py \
      --workdir runs/prior_celeba --data-dir ~/tensorflow_datasets
"""
from blindinv_jax.training import TrainConfig


def get_config() -> TrainConfig:
  return TrainConfig(
      model="celeba64",
      data="tfds:celeb_a",
      split="train",
      batch_size=128,
      steps=50_000,
      lr=2e-4,
      b1=0.5,
      seed=0,
      sample_every=1000,
      checkpoint_every=1000,
      snapshot_every=5000,
  )
