"""Figure 2b: four non-linear mixtures |M^T X| of three MNIST sources.

  python experiments/reproduce.py --config experiments/configs/mnist_sep4.py \
      --workdir runs/mnist_sep4 [--schedule paper]

25 observations of 4 mixtures each of 3 held-out mnist5k test digits, one
shared M ~ N(-0.5, 0.5) [3, 4]; the per-pixel MLP surrogate (Dense 16, ReLU,
Dense 4). Methods: the blind solver from random latents ("blind") and from
FastICA's sources projected onto the prior ("blind_ica",
``experiment.ica_latents``); baselines ICA (FastICA over pixels), the naive
additive model and PGD with the true mixing.

Schedule: TUNED with the latent step size 3e-2, chosen on 16 observations of
the ``val`` split (``reproduce.py ... --split val --n 16 --latent-lr L
--restarts R --methods blind,ica``): latent lr 1e-2 gave 11.69 dB (SSIM
0.362, 38% of digits read), 1e-2 with 4 restarts 11.98 dB (0.397, 29%),
3e-2 12.23 dB (0.436, 50%); FastICA 11.48 dB (0.276, 48%) on the same
observations. Also measured, not kept: 1e-1 12.14 dB (0.460, 52%); 3e-2 with
4 restarts 12.54 dB but SSIM 0.421 and 44% read, at 2.8x the time
(restarts raise PSNR and lower the digits read, as at 1e-2); 3e-2 for 120
outer steps instead of 60: 12.18 dB (0.436, 42%).

blind_ica on the same 16 val observations (same schedule, ``--methods
blind,blind_ica,ica``): 13.14 dB (SSIM 0.461, 48% read), paired +1.66 +-
0.44 dB over ICA (better on 35 of 48 sources) and +0.91 +- 0.50 over blind.
A throwaway script also tried ICA's background shifted to -1 before
projecting, and latent step 1e-2 for blind_ica; neither did better. It is
not kept, so its numbers are not quoted. Kept: the plain projection and
3e-2.

A heavier perceptual term (``--alpha A --methods blind,blind_ica,ica``)
pulls the sources towards digits but away from the mixtures: alpha 1 gives
blind 11.87 dB (44% read) and blind_ica 12.83 dB (52% read); alpha 10 gives
10.63 (33%) and 11.76 (42%). Kept: the paper's 1e-4.
"""
from blindinv_jax import experiment as E
from blindinv_jax import solver


def get_config() -> E.ExperimentConfig:
  return E.ExperimentConfig(
      name="mnist_sep4",
      title="Blind source separation: 4 mixtures of 3 MNIST sources",
      data=E.DataSpec(source="mnist5k", split="test", n=25),
      task=E.TaskSpec(kind="mix", num_sources=3, num_mixtures=4,
                      mixing_seed=0),
      prior="mnist", classify=True, surrogate="mixing",
      solver=solver.TUNED.replace(latent_lr=3e-2),
      methods=("blind", "blind_ica", "naive", "ica", "pgd_known"))
