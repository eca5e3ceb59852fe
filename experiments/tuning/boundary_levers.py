"""Unknown borders: which surrogate recovers observations made with the scene
continuing past the frame (an investigation on ``val``).

  python experiments/tuning/boundary_levers.py --task blur --n 16 \\
      --out runs/boundary_val

The first ``--n`` mnist5k ``val`` digits (all ten classes), blurred by the
9x9 Gaussian of sigma 2 (``--task blur``) or their Sobel edge maps
(``--task edges``), with each border convention of
:data:`blindinv_jax.operators.BOUNDARIES` (``--boundaries``), are solved
blindly with the tuned schedule, the shipped prior and seed 0, by each
surrogate variant (``--variants``):

* ``today``: the linear conv surrogate as it ships (zero "SAME" padding,
  biases);
* ``nobias``: the same without biases (the background then pins the
  kernel's sum: a constant -1 background must come out as the observations'
  background);
* ``edge``: the surrogate sees the sources padded with their edge values
  (the scene continuing), then crops back: no frame of its own;
* ``edge_nobias``: both;
* ``valid`` / ``valid_nobias``: the data loss covers only the interior
  whose value no padding reaches (the surrogate's output and the
  observations zeroed on the 4-pixel border of two 5x5 convolutions);
* ``conv_scene``: the library's ``"conv_scene"`` family (edge-padded
  sources, no biases: ``edge_nobias`` as shipped);
* ``auto``: ``surrogate="auto"``, which screens every family (``conv_scene``
  among them) on held-out pixels;
* ``fill_nobias``: no biases, and the sources continue past the frame as
  ``a * edge + c`` with ``a`` and ``c`` learned with the surrogate (from
  ``a = c = 0``, today's zero padding): zero padding and the scene are both
  in its reach, and the data choose.

Writes ``OUT/boundary_<task>.json`` (rows reused when re-run with the same
arguments) and prints PSNR against the clean digits, the observations'
PSNR, and the effective kernel's correlation with the truth and its sum.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import data, metrics, operators as ops, resume, solver
from blindinv_jax.models.surrogates import LinearConvSurrogate, effective_kernel
from blindinv_jax.priors import load_prior

VARIANTS = ("today", "nobias", "edge", "edge_nobias", "fill_nobias",
            "valid", "valid_nobias", "conv_scene", "auto")


class EdgePadded(nn.Module):
  """The linear conv surrogate applied to sources padded with their edge
  values (by the two convolutions' reach), cropped back to ``[B, H, W,
  C_obs]``: the surrogate draws no frame of its own."""
  out_channels: int
  use_bias: bool = True
  kernel_size: int = 5

  @nn.compact
  def __call__(self, x):
    m = self.kernel_size - 1
    xp = jnp.pad(x, ((0, 0), (m, m), (m, m), (0, 0)), mode="edge")
    y = LinearConvSurrogate(self.out_channels, kernel_size=self.kernel_size,
                            use_bias=self.use_bias, name="inner")(xp)
    return y[:, m:-m, m:-m, :]


class LearnedFill(nn.Module):
  """The linear conv surrogate (no biases) on sources that continue past
  the frame as ``a * edge + c`` (``a``, ``c`` learned scalars, from 0)."""
  out_channels: int
  kernel_size: int = 5

  @nn.compact
  def __call__(self, x):
    m = self.kernel_size - 1
    a = self.param("fill_edge", nn.initializers.zeros, ())
    c = self.param("fill_const", nn.initializers.zeros, ())
    pad = ((0, 0), (m, m), (m, m), (0, 0))
    edge = jnp.pad(x, pad, mode="edge")
    inside = jnp.pad(jnp.ones_like(x), pad)
    xp = inside * jnp.pad(x, pad) + (1 - inside) * (a * edge + c)
    y = LinearConvSurrogate(self.out_channels, kernel_size=self.kernel_size,
                            use_bias=False, name="inner")(xp)
    return y[:, m:-m, m:-m, :]


def interior_mask(height: int, width: int, margin: int) -> jax.Array:
  """``[H, W, 1]``: 1 where every pixel a ``2 * margin + 1`` wide filter
  reads lies inside the frame, 0 on the ``margin``-pixel border."""
  m = jnp.zeros((height, width, 1))
  return m.at[margin:height - margin, margin:width - margin].set(1.0)


class Interior(nn.Module):
  """The linear conv surrogate with its output zeroed on the border that
  its two convolutions' padding reaches: with the observations zeroed there
  too, the data loss covers only the pixels whose value does not depend on
  how anything was padded."""
  out_channels: int
  use_bias: bool = True
  kernel_size: int = 5

  @nn.compact
  def __call__(self, x):
    y = LinearConvSurrogate(self.out_channels, kernel_size=self.kernel_size,
                            use_bias=self.use_bias, name="inner")(x)
    return y * interior_mask(y.shape[-3], y.shape[-2],
                             self.kernel_size - 1)


def surrogate(variant: str):
  if variant in ("conv_scene", "auto"):
    return variant              # the library's family, or its choice
  return {"today": LinearConvSurrogate(1),
          "nobias": LinearConvSurrogate(1, use_bias=False),
          "edge": EdgePadded(1),
          "edge_nobias": EdgePadded(1, use_bias=False),
          "fill_nobias": LearnedFill(1),
          "valid": Interior(1), "valid_nobias": Interior(1, use_bias=False),
          }[variant]


def kernel_of(params) -> np.ndarray:
  p = params["params"]
  p = {"params": p["inner"]} if "inner" in p else params
  return np.asarray(effective_kernel(p))[:, :, 0, 0]


def kernel_scores(k_est, k_true) -> dict:
  """Correlation of the estimated kernel with the truth (zero-padded to
  the same size, centred) and the estimate's sum."""
  a = np.asarray(k_est, np.float64)
  b = np.zeros_like(a)
  off = (a.shape[0] - k_true.shape[0]) // 2
  b[off:off + k_true.shape[0], off:off + k_true.shape[1]] = k_true
  corr = float(np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b)))
  return {"correlation": round(corr, 4), "sum": round(float(a.sum()), 4)}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--task", choices=("blur", "edges"), default="blur")
  ap.add_argument("--n", type=int, default=16, help="val digits")
  ap.add_argument("--boundaries", default="zero,scene,circular,reflect")
  ap.add_argument("--variants", default=",".join(VARIANTS))
  ap.add_argument("--outer-steps", type=int, default=None,
                  help="override TUNED's 60 outer steps")
  ap.add_argument("--out", required=True)
  args = ap.parse_args(argv)
  cfg = solver.TUNED if args.outer_steps is None else solver.TUNED.replace(
      outer_steps=args.outer_steps)
  out = pathlib.Path(args.out)
  cache = resume.ResultCache(
      out / f"boundary_{args.task}.json",
      {"task": args.task, "n": args.n, "split": "val", "prior": "mnist",
       "config": cfg.__dict__, "seed": 0})
  prior = load_prior("mnist")
  x = jnp.asarray(data.load_images("mnist5k", "val", limit=args.n))
  k = ops.gaussian_kernel(9, 2.0) if args.task == "blur" else \
      jnp.asarray(ops.SOBEL)
  for b in args.boundaries.split(","):
    y = ops.blur(x, k, boundary=b)
    obs = (float(jnp.mean(metrics.psnr(jnp.clip(y, -1, 1), x)))
           if args.task == "blur" else None)
    for v in args.variants.split(","):
      name = f"{b}/{v}"
      if name in cache.rows:
        continue
      t0 = time.perf_counter()
      y_in = (y * interior_mask(y.shape[1], y.shape[2], 4)
              if v.startswith("valid") else y)
      res = solver.solve(y_in, prior, surrogate=surrogate(v), config=cfg,
                         key=jax.random.key(0))
      p = np.asarray(metrics.psnr(res.sources[:, 0], x))
      fill = res.surrogate_params["params"]
      fill = {k: round(float(fill[k]), 4) for k in ("fill_edge", "fill_const")
              if k in fill}
      fam = res.choice.family if res.choice is not None else v
      kern = ({} if fam in ("mixing", "conv_mlp") else {"kernel": kernel_scores(
          kernel_of(res.surrogate_params), np.asarray(k))})
      cache.rows[name] = {
          "psnr": metrics.summary(p), "observation_psnr": obs, **fill,
          "family": fam, **kern,
          "seconds": round(time.perf_counter() - t0, 1)}
      cache.save()
      r = cache.rows[name]
      kr = r.get("kernel", {})
      print(f"{args.task} {name:22s} blind {r['psnr'][0]:.2f} ± "
            f"{r['psnr'][1]:.2f} dB (observation {obs}), {r['family']}, "
            f"kernel corr {kr.get('correlation')}, sum {kr.get('sum')} "
            f"({r['seconds']} s)", flush=True)
  return cache.rows


if __name__ == "__main__":
  try:
    main()
  except (ValueError, FileNotFoundError) as e:
    print(f"boundary_levers.py: error: {e}", file=sys.stderr)
    sys.exit(2)
