"""A candidate for the fifth MNIST prior: R3GAN's recipe on our DCGAN.

R3GAN (Huang et al. 2024, "The GAN is dead; long live the GAN!"): the
relativistic pairing loss (D scores each real digit against a generated
one), zero-centred gradient penalties on real *and* generated images (R1 +
R2, gamma 0.1 each), Adam with beta1 = 0 and beta2 = 0.99, and an EMA
generator (decay 0.999), on the ``mnist28`` DCGAN and the first 4,000
mnist5k train digits, batch 64, 20,000 steps. Snapshots every 1,000 steps,
a checkpoint every 250 (a killed run resumes where it stopped when the same
command is run again):

  blindinv train-prior --config experiments/assets/prior_mnist_r3gan.py \\
      --workdir runs/prior_mnist_r3gan

The shipping rule, written before any snapshot was scored:

1. **Sample quality on val** (``prior_quality.py --val-n 100``: 512
   samples, the independent MLP): a snapshot is eligible only if at least as
   many of its samples are read with confidence >= 0.9 as mnist-v1's, and its
   Frechet distance ratio is no larger than mnist-v1's.
2. **A blind deblurring solve on val**: among the eligible snapshots, the one
   whose blind PSNR is highest on the first 16 val digits
   (``reproduce.py --config=experiments/paper/configs/mnist_deblur.py
   --config.data.split=val --config.data.n=16 --config.methods=blind
   --config.prior=PATH``: realistic borders, ``conv_scene``, TUNED, seed 0).
3. **Ship it as ``"mnist"`` only if it wins**: its blind PSNR on that solve
   beats the shipped prior's by at least 0.3 dB (paired mean over the 16
   digits), and its val projection error is no worse than the shipped
   prior's. Otherwise it ships as a named candidate (``"mnist-v4"``) or not
   at all, and ``"mnist"`` stays mnist-v1. Every earlier prior stays
   reachable by name.
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
      b1=0.0,
      b2=0.99,
      seed=0,
      ema_decay=0.999,
      gan_loss="rpgan",
      r1_gamma=0.1,
      r2_gamma=0.1,
      sample_every=1000,
      checkpoint_every=250,
      snapshot_every=1000,
  )
