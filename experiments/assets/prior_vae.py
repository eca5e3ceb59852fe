"""A VAE prior on mnist5k: the worked example of a second prior family.

  blindinv train-prior --config experiments/assets/prior_vae.py \
      --workdir runs/prior_vae

VAE28 (latent 32, Gaussian likelihood of sigma 0.1) on the first 4,000
mnist5k train digits: ``limit=4000`` leaves out the ``val`` split (the last
500 train digits), on which the snapshot is chosen
(``experiments/assets/prior_quality.py``). A killed run resumes where it
stopped when the same command is run again.
"""
from blindinv_jax.training import TrainConfig


def get_config() -> TrainConfig:
  return TrainConfig(
      model="vae28",
      data="mnist5k",
      split="train",
      limit=4000,
      batch_size=64,
      steps=8_000,
      lr=1e-3,
      b1=0.9,
      seed=0,
      sample_every=1000,
      checkpoint_every=500,
      snapshot_every=1000,
  )
