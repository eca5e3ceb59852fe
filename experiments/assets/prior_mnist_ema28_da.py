"""A candidate for the fourth MNIST prior: mnist-v3's recipe (``mnist28``,
an EMA generator with decay 0.999, the first 4,000 train digits) with
DiffAugment (translation and cutout on real and generated images before D),
run twice as long. Why, and what its snapshots scored (none was kept):
docs/notes/2026-11-27-mnist-v3-diffaugment.md.

Run (resumes where it stopped when run again):

  blindinv train-prior --config experiments/assets/prior_mnist_ema28_da.py \
      --workdir runs/prior_mnist_ema28_da

Score its snapshots on val and choose among those whose samples are at
least as good as mnist-v3's:

  python experiments/assets/prior_quality.py --workdir runs/prior_mnist_ema28_da \
      --kinds ema --only 4000,6000,8000,10000,12000,13000 --val-n 100 \
      --choose-only --min-confident 0.791 --max-fd-ratio 1.77 --out runs/pq_ema28_da
"""
from blindinv_jax.training import TrainConfig


def get_config() -> TrainConfig:
  return TrainConfig(
      model="mnist28",
      data="mnist5k",
      split="train",
      limit=4000,
      batch_size=64,
      steps=20_000,
      lr=2e-4,
      b1=0.5,
      seed=0,
      ema_decay=0.999,
      diffaug="translation,cutout",
      sample_every=1000,
      checkpoint_every=250,
      snapshot_every=1000,
  )
