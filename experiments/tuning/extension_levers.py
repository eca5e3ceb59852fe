"""Range-extension levers on ``val`` (issue 31): each variant of the
extension after the same plain solve, PSNR against the clean digits, the
paired difference to the plain solve and the kernel error.

  python experiments/tuning/extension_levers.py --task blur --n 16 \\
      --variants ilo:1:0.01,ilo:2:0.01,sparse:5:0.001 --out runs/extension

A variant is ``kind:depth:size[:phase]``: ``ilo`` with the l1-ball radius
``size`` (mean absolute deviation per entry) or ``sparse`` with the
soft-threshold ``size``, at generator depth ``depth`` (5: the image);
``none:0:0`` is the control (the same steps without the extension);
``phase`` is ``alt`` (the last ``--ext-steps`` outer steps of Algorithm 1
alternate with the extension on, the surrogate still learning; default)
``post`` (the surrogate frozen, ``--ext-steps * T2`` latent steps) or
``fromK`` (one solve of T outer steps, the extension on from step K:
``SolverConfig.extension_from``). Each
runs after the same plain blind solve (conv_scene on realistic borders,
TUNED, ``--restarts`` restarts kept by ``--select``, ``--seed``) and after PGD with the true blur.
"""
from __future__ import annotations

import argparse
import functools
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import (
  algorithm,
  baselines,
  data,
  extension,
  latent,
  metrics,
  priors,
  solver,
  tasks,
)
from blindinv_jax.config import TUNED
from blindinv_jax.models.surrogates import effective_kernel


def parse(spec: str, base):
  kind, depth, size, *phase = spec.split(":")
  if kind == "none":          # the control: the same steps, no extension
    return base, (phase[0] if phase else "alt")
  cfg = base.replace(extension=kind, extension_depth=int(depth))
  cfg = cfg.replace(**({"extension_radius": float(size)} if kind == "ilo"
                       else {"extension_shrink": float(size)}))
  return cfg, (phase[0] if phase else "alt")


@functools.partial(jax.jit, static_argnames=("forward", "config"))
def post(z, y, params, prior, forward, config):
  """``config.latent_steps`` projected Adam steps on the extended latents
  from ``[z, 0]`` with the forward model fixed."""
  zx = extension.pad(z, prior) if config.extension else z
  opt = algorithm.latent_optimizer(config).init(zx)
  fwd = lambda x: forward(params, x)
  zx, _, _ = algorithm.project_latents(zx, opt, fwd, y, prior, config, 1)
  return prior.generate(zx)


@functools.partial(jax.jit, static_argnames=("surrogate", "config", "steps"))
def alternate(state, y, prior, surrogate, config, steps):
  """``steps`` more outer steps of Algorithm 1 under the extended prior,
  from a plain solve's state (latents padded with d = 0, fresh Adam)."""
  zx = extension.pad(state.z, prior) if config.extension else state.z
  state = state.replace(z=zx, latent_opt=jax.vmap(
      algorithm.latent_optimizer(config).init)(zx))
  state = jax.lax.fori_loop(0, steps, lambda _, s: algorithm.outer_step(
      s, y, prior, surrogate, config)[0], state)
  x, _, params, _, _ = algorithm.final_estimates(state, y, prior, surrogate)
  return x, params


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--n", type=int, default=16)
  ap.add_argument("--split", default="val")
  ap.add_argument("--variants", default="ilo:1:0.01")
  ap.add_argument("--ext-steps", type=int, default=10)
  ap.add_argument("--out", default="runs/extension")
  ap.add_argument("--methods", default="blind,pgd_known")
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--restarts", type=int, default=1)
  ap.add_argument("--select", default="fit")
  ap.add_argument("--outer-steps", type=int, default=TUNED.outer_steps)
  a = ap.parse_args(argv)
  out = pathlib.Path(a.out)
  out.mkdir(parents=True, exist_ok=True)
  x = np.asarray(data.load_images("mnist5k", a.split)[:a.n])
  task = tasks.TaskSpec(kind="blur", kernel_size=9, sigma=2.0)
  fwd, info = tasks.forward_model(task)
  y = fwd(jnp.asarray(x)[:, None])
  prior = priors.load_prior("mnist")
  cfg0 = TUNED.replace(outer_steps=a.outer_steps, restarts=a.restarts,
                       select=a.select)
  key = jax.random.key(a.seed)
  rows = []
  for method in a.methods.split(","):
    t0 = time.time()
    if method == "blind":
      res = solver.solve(y, prior, surrogate="conv_scene", config=cfg0,
                         key=key)
      x0, z0, params = res.sources, res.latents, res.surrogate_params
      surrogate = res.surrogate
      forward = latent.ParamForward(surrogate=surrogate)
      k0 = metrics.kernel_error(np.asarray(effective_kernel(params))[:, :, 0,
                                                                     0],
                                np.asarray(info["kernel"]))["error"]
    else:
      x0, z0, _ = baselines.pgd(y, prior, fwd, config=cfg0)
      params, forward, k0 = None, latent.ParamForward(known=fwd), None
    p0 = np.asarray(metrics.psnr(np.asarray(x0[:, 0]), x))
    rows.append({"method": method, "variant": "none", "psnr": float(p0.mean()),
                 "paired": 0.0, "paired_se": 0.0, "kernel_error": k0,
                 "seconds": time.time() - t0})
    print(json.dumps(rows[-1]), flush=True)
    for spec in a.variants.split(","):
      t0 = time.time()
      cfg, phase = parse(spec, cfg0)
      xp = extension.extend(prior, cfg)
      k = None
      if method == "blind" and phase.startswith("from"):
        r2 = solver.solve(y, prior, surrogate="conv_scene", config=cfg.replace(
            extension_from=int(phase[4:])), key=key)
        xh = r2.sources
        k = metrics.kernel_error(np.asarray(effective_kernel(
            r2.surrogate_params))[:, :, 0, 0], np.asarray(info["kernel"]))[
                "error"]
      elif method == "blind" and phase == "alt":
        xh, p_new = alternate(res.state, y, xp, surrogate, cfg, a.ext_steps)
        k = metrics.kernel_error(np.asarray(effective_kernel(p_new))[:, :, 0,
                                                                     0],
                                 np.asarray(info["kernel"]))["error"]
      else:
        xh = post(z0, y, params, xp, forward,
                  cfg.replace(latent_steps=a.ext_steps * cfg.latent_steps))
        k = k0
      p = np.asarray(metrics.psnr(np.asarray(xh[:, 0]), x))
      d = p - p0
      rows.append({"method": method, "variant": spec, "psnr": float(p.mean()),
                   "paired": float(d.mean()),
                   "paired_se": float(d.std() / np.sqrt(len(d))),
                   "kernel_error": k, "seconds": time.time() - t0})
      print(json.dumps(rows[-1]), flush=True)
  (out / f"levers_{a.split}_seed{a.seed}_T{a.outer_steps}_R{a.restarts}.json").write_text(json.dumps(
      {"n": a.n, "split": a.split, "ext_steps": a.ext_steps, "rows": rows},
      indent=1))


if __name__ == "__main__":
  main()
