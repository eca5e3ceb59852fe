"""Side-by-side parity of every method on small inputs, for refactors.

Runs each entry point that executes Algorithm 1 or its siblings on 6 mnist5k
val digits with the shipped prior and a few steps: ``solve`` (one restart,
two restarts, minibatch mode, checkpoint + resume, ``surrogate="auto"``,
bfloat16), ``baselines.pgd`` (without and with a known F, float32 and
bfloat16), ``refine.refine_latents`` / ``refine_solve``, ``project.project``
and the population experiment, and saves every output array. Run it on two
checkouts and compare::

  PYTHONPATH=/path/to/old python experiments/perf/parity.py --out old.npz
  python experiments/perf/parity.py --out new.npz
  python experiments/perf/parity.py --compare old.npz new.npz

``--compare`` prints, per array, whether it is bit for bit the same and
otherwise its largest absolute difference.
"""
from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys
import tempfile
import time

import numpy as np


def _population_module():
  """experiments/tuning/population.py of the checkout that blindinv_jax is
  imported from."""
  import blindinv_jax
  root = pathlib.Path(blindinv_jax.__file__).parent.parent
  spec = importlib.util.spec_from_file_location(
      "population", root / "experiments" / "tuning" / "population.py")
  mod = importlib.util.module_from_spec(spec)
  sys.modules["population"] = mod          # its dataclasses look it up
  spec.loader.exec_module(mod)
  return mod


def run(out: str) -> None:
  import jax
  import jax.numpy as jnp

  from blindinv_jax import (
    baselines,
    data as data_lib,
    operators as ops,
    project as project_lib,
    refine,
    solver,
  )
  from blindinv_jax.priors import load_prior

  prior = load_prior("mnist")
  x = jnp.asarray(data_lib.load_images("mnist5k", "val", limit=6))
  k = ops.gaussian_kernel(9, 2.0)
  y = ops.blur(x, k, "zero")
  forward = lambda s: ops.blur(s[:, 0], k, "zero")
  cfg = solver.FAST.replace(outer_steps=4, surrogate_steps=5, latent_steps=5)
  key = jax.random.key(3)
  res = {}

  def keep(name, r):
    res[f"{name}/sources"] = np.asarray(r.sources)
    res[f"{name}/latents"] = np.asarray(r.latents)
    res[f"{name}/reconstruction"] = np.asarray(r.reconstruction)
    for h, v in r.history.items():
      res[f"{name}/history/{h}"] = np.asarray(v)
    for i, leaf in enumerate(jax.tree_util.tree_leaves(r.surrogate_params)):
      res[f"{name}/theta/{i}"] = np.asarray(leaf)

  t0 = time.perf_counter()
  runs = {
      "solve": dict(config=cfg),
      "solve_r2": dict(config=cfg.replace(restarts=2)),
      "solve_minibatch": dict(config=cfg.replace(batch_size=4)),
      "solve_bf16": dict(config=cfg.replace(precision="bfloat16")),
      "solve_mixing": dict(config=cfg, surrogate="mixing"),
  }
  for name, kw in runs.items():
    kw.setdefault("surrogate", "conv")
    keep(name, solver.solve(y, prior, key=key, **kw))
    print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)

  with tempfile.TemporaryDirectory() as d:
    solver.solve(y, prior, surrogate="conv", key=key,
                 config=cfg.replace(outer_steps=2), checkpoint_dir=d)
    keep("solve_resumed", solver.solve(y, prior, surrogate="conv", key=key,
                                       config=cfg, checkpoint_dir=d))
  auto = solver.solve(y[:4], prior, key=key, config=cfg)
  keep("solve_auto", auto)
  res["solve_auto/held_out"] = np.asarray([c[2] for c in
                                           auto.choice.candidates])
  print(f"solve + auto: {time.perf_counter() - t0:.0f} s", flush=True)

  for name, fwd, c in (("pgd", None, cfg),
                       ("pgd_known", forward, cfg.replace(restarts=2)),
                       ("pgd_known_bf16", forward,
                        cfg.replace(precision="bfloat16"))):
    xs, z, loss = baselines.pgd(y if fwd else x, prior, fwd, config=c,
                                key=key)
    res[f"{name}/sources"], res[f"{name}/latents"] = np.asarray(xs), \
        np.asarray(z)
    res[f"{name}/loss"] = np.asarray(loss)
  print(f"pgd: {time.perf_counter() - t0:.0f} s", flush=True)

  base = solver.solve(y, prior, surrogate="conv", key=key, config=cfg)
  r, picked = refine.refine_solve(base, y, prior, restarts=2, config=cfg,
                                  key=key)
  res["refine_solve/sources"] = np.asarray(r.sources)
  res["refine_solve/picked"] = np.asarray(picked)
  known = lambda params, s: forward(s)
  z, picked, err = refine.refine_latents(y, prior, known, None, base.latents,
                                         restarts=2, config=cfg, key=key)
  res["refine_known/latents"], res["refine_known/picked"] = np.asarray(z), \
      np.asarray(picked)
  res["refine_known/error"] = np.asarray(err)
  print(f"refine: {time.perf_counter() - t0:.0f} s", flush=True)

  xh, z, loss = project_lib.project(prior, x, steps=25, key=key, restarts=2)
  res["project/x"], res["project/z"] = np.asarray(xh), np.asarray(z)
  res["project/loss"] = np.asarray(loss)
  print(f"project: {time.perf_counter() - t0:.0f} s", flush=True)

  pop = _population_module()
  xs, kept, _ = pop.population_solve(y, prior, "conv", 1, cfg, 2, key)
  res["population/sources"], res["population/kept"] = np.asarray(xs), \
      np.asarray(kept)
  print(f"population: {time.perf_counter() - t0:.0f} s", flush=True)
  np.savez(out, **res)
  print(f"wrote {len(res)} arrays to {out}")


def compare(a: str, b: str) -> int:
  old, new = np.load(a), np.load(b)
  differ = 0
  for name in sorted(set(old.files) | set(new.files)):
    if name not in old.files or name not in new.files:
      print(f"{name}: only in {'new' if name in new.files else 'old'}")
      differ += 1
      continue
    u, v = old[name], new[name]
    if u.shape != v.shape:
      print(f"{name}: shape {u.shape} -> {v.shape}")
      differ += 1
    elif np.array_equal(u, v, equal_nan=True):
      print(f"{name}: bit for bit")
    else:
      d = np.max(np.abs(u.astype(np.float64) - v.astype(np.float64)))
      print(f"{name}: differs, max |diff| {d:.3g}")
      differ += 1
  print(f"{differ} of {len(set(old.files) | set(new.files))} arrays differ")
  return differ


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--out", help="write the arrays to this .npz")
  ap.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"),
                  help="compare two .npz files written by --out")
  args = ap.parse_args(argv)
  if args.compare:
    return 1 if compare(*args.compare) else 0
  if not args.out:
    ap.error("give --out FILE or --compare OLD NEW")
  run(args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
