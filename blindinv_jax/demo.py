"""``blindinv demo``: the main job on the embedded default data.

Blind deblurring of held-out mnist5k test digits: blurs them with a 9x9
Gaussian of sigma 2 (or takes their Sobel edge maps with ``task="sobel"``),
hands only the observations and the shipped prior to the solver, and reports
PSNR/SSIM of the observation and of the recovery against the clean digits,
and how close the surrogate's effective kernel is to the true one. Uses the
solver's fast schedule (:data:`blindinv_jax.config.FAST`). The digits
continue past the frame as a camera's scene does (``boundary="scene"``):
with no frame to pin the kernel, the solve is re-centred once
(``SolverConfig.recentre=0``, :mod:`blindinv_jax.recentre`). Writes
``samples.png`` (the prior), ``figure.png`` (observed / estimated corruption
/ recovered / original), ``kernel.png``, ``metrics.json`` and the arrays.
"""
from __future__ import annotations

import dataclasses
import json
import time

import jax
import jax.numpy as jnp
import numpy as np


def blurred_digits(task: str, split: str, n: int, image_size=None,
                   boundary: str = "zero"):
  """``(x [n, H, W, 1], y, kernel)``: the first n mnist5k digits of
  ``split`` (at ``image_size``, default 28) and their 9x9 sigma-2 blur
  (``task="blur"``) or Sobel edge map (``"sobel"``/``"edges"``), the image
  continuing past its frame as ``boundary`` says (``operators.BOUNDARIES``;
  ``"zero"``, the demo's and the tuning scripts' simulation)."""
  from blindinv_jax import data as data_lib, operators as ops
  k = (ops.gaussian_kernel(9, 2.0) if task == "blur" else
       jnp.asarray(ops.SOBEL))
  x = jnp.asarray(data_lib.load_images("mnist5k", split, limit=n,
                                       image_size=image_size))
  return x, ops.blur(x, k, boundary), k


def score_blind_kernel_solve(x, y, res, k_true):
  """Scores a one-source conv-surrogate solve of ``y = F(x)``.

  Returns ``(scores, recovered [N, H, W, C], effective kernel [k, k])``;
  scores holds mean/std PSNR and SSIM of the observation (clipped to
  ``[-1, 1]``) and of the recovery against x, and the kernel error.
  """
  from blindinv_jax import metrics
  from blindinv_jax.models.surrogates import effective_kernel
  rec = res.sources[:, 0]
  y_view = jnp.clip(y, -1, 1)
  k_est = np.asarray(effective_kernel(res.surrogate_params))[:, :, 0, 0]
  obs = metrics.score(y_view[:, None], x[:, None], separation=False)
  got = metrics.score(res.sources, x[:, None], separation=False)
  scores = {"psnr_observation": obs["psnr"], "psnr_recovered": got["psnr"],
            "ssim_observation": obs["ssim"], "ssim_recovered": got["ssim"],
            "kernel": metrics.kernel_error(k_est, np.asarray(k_true))}
  return scores, rec, k_est


def run(out="demo_out", n: int = 16, task: str = "blur",
        outer_steps: int | None = None, prior_name: str = "mnist",
        seed: int = 0, overwrite: bool = False,
        boundary: str = "scene") -> dict:
  """Runs the demo and returns its metrics. ``boundary``: how the scene
  continues past the frame in the simulation (``operators.BOUNDARIES``).
  ``"zero"`` (zero padding on ``[-1, 1]``, a grey frame) is solved with the
  ``conv`` surrogate, which draws the same frame, in one solve; any other
  blur with ``conv_scene`` (edge maps with ``conv``, as the experiment
  configs do), then re-centred (``recentre=0``)."""
  from blindinv_jax import metrics, solver, viz
  from blindinv_jax.priors import resolve
  from blindinv_jax.utils import prepare_out, progress_callback
  from blindinv_jax.validation import check_positive_int
  if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 500:
    raise ValueError(f"--n must be between 1 and 500 (the mnist5k test split),"
                     f" got {n!r}.")
  if task not in ("blur", "sobel"):
    raise ValueError(f"--task must be 'blur' or 'sobel', got {task!r}.")
  from blindinv_jax.operators import check_boundary
  framed = check_boundary(boundary) == "zero"
  surrogate = "conv" if framed or task == "sobel" else "conv_scene"
  config = solver.FAST.replace(recentre=None if framed else 0.0)
  if outer_steps is not None:
    config = config.replace(outer_steps=check_positive_int("--outer-steps",
                                                           outer_steps))
  config = config.validate()
  out = prepare_out(out, overwrite)
  prior = resolve(prior_name)
  h, w, c = prior.image_shape
  meta = getattr(prior, "meta", {})
  name = getattr(getattr(prior, "config", None), "name", type(prior).__name__)
  print(f"prior {prior_name!r}: {name}, {h}x{w}x{c}, latent "
        f"{prior.latent_dim}, trained {meta.get('step')} steps")
  if not prior.has_discriminator:
    config = config.replace(alpha=0.0)
    print("the prior has no discriminator: the perceptual term is off "
          "(alpha=0)")
  samples = prior.generate(prior.sample_latents(jax.random.key(seed), 64))
  viz.save_grid(out / "samples.png", samples, ncols=8, scale=3)

  x, y, k_true = blurred_digits(task, "test", n, image_size=(h, w),
                                boundary=boundary)
  what = ("9x9 Gaussian blur, sigma 2" if task == "blur" else
          "Sobel edge map") + f", border {boundary!r}, surrogate {surrogate!r}"
  print(f"blind {task}: {n} held-out digits, {what}; the solver sees only the "
        f"observations ({config.outer_steps} outer steps of "
        f"{config.surrogate_steps}+{config.latent_steps}, latent lr "
        f"{config.latent_lr:g}, {config.restarts} restart(s)"
        + ("" if framed else ", then re-centred and solved again") + ")")
  callback, close = progress_callback(config.outer_steps)
  t0 = time.perf_counter()
  res = solver.solve(y, prior, num_sources=1, surrogate=surrogate,
                     config=config, key=jax.random.key(seed),
                     callback=callback)
  jax.block_until_ready(res.sources)
  close()
  seconds = time.perf_counter() - t0

  scores, rec, k_est = score_blind_kernel_solve(x, y, res, k_true)
  k_err = scores["kernel"]
  p_rec = metrics.psnr(rec, x)
  result = {"task": task, "n": n, "prior": prior_name, "boundary": boundary,
            "prior_step": meta.get("step"), "seed": seed,
            "config": dataclasses.asdict(config),
            "seconds": round(seconds, 1), **scores,
            "recentred": res.recentred,
            "psnr_recovered_per_digit": np.asarray(p_rec).round(2).tolist()}
  (out / "metrics.json").write_text(json.dumps(result, indent=1))
  np.save(out / "observations.npy", np.asarray(y))
  np.save(out / "recovered.npy", np.asarray(rec))
  np.save(out / "effective_kernel.npy", k_est)
  k = min(n, 16)
  viz.save_rows(out / "figure.png",
                [jnp.clip(y[:k], -1, 1), jnp.clip(res.reconstruction[:k], -1, 1),
                 rec[:k], x[:k]],
                ["observed", "estimated\ncorruption", "recovered", "original"],
                title=f"Blind {task}: observation {result['psnr_observation'][0]:.2f}"
                f" dB -> recovered {result['psnr_recovered'][0]:.2f} dB (n={n})")
  viz.save_kernels(out / "kernel.png", [np.asarray(k_true), k_est],
                   ["true kernel", "surrogate's effective kernel"],
                   title=f"normalised error {k_err['error']:.3f} "
                   f"(after shift {k_err['shift']} and scale)")
  print(f"observation PSNR {result['psnr_observation'][0]:.2f} dB, SSIM "
        f"{result['ssim_observation'][0]:.3f}")
  print(f"recovered   PSNR {result['psnr_recovered'][0]:.2f} ± "
        f"{result['psnr_recovered'][1]:.2f} dB, SSIM "
        f"{result['ssim_recovered'][0]:.3f} ({seconds:.0f} s)")
  print(f"kernel: normalised error {k_err['error']:.3f}, correlation "
        f"{k_err['ncc']:.4f}")
  if res.recentred:
    from blindinv_jax.recentre import describe
    print(describe(res.recentred))
  print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")
  return result
