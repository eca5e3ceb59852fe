"""Latent populations per observation inside Algorithm 1 (an experiment).

``refine.py`` restarts the latents after a solve, under the solve's fixed
surrogate; on four mixtures that cannot help, because the surrogate has
co-adapted to the recovered sources
(docs/notes/2026-11-26-why-four-mixtures-stall.md). This variant keeps R
latent candidates per observation through the whole solve. Each outer step:

1. picks, per observation, the candidate whose ``F_hat(G(z))`` fits y best
   (L1) under the current surrogate;
2. runs the surrogate phase (T1 Adam steps on theta) on those picks;
3. runs the latent phase (T2 projected Adam steps) on every candidate.

So theta is fitted to the best candidate of each observation, and a
candidate that fits better later takes over. Both this and Algorithm 1 (one
restart) run on the same observations, with the same seed, and are scored
like ``reproduce.py`` (PSNR against the clean sources in their best order,
digits read by the shipped classifier):

  python experiments/tuning/population.py \\
      --config experiments/paper/configs/mnist_sep4.py --split val --n 10 \\
      --candidates 4 --out runs/population_sep4_val

It writes ``<out>/population.json``.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from functools import partial

import jax
import numpy as np

from blindinv_jax import backend, experiment as E, solver
from blindinv_jax.algorithm import (
  init_state,
  latent_phase,
  select_best,
  stack_sources,
  surrogate_phase,
)
from blindinv_jax.models.surrogates import make_surrogate
from blindinv_jax.options import (
  add_experiment_args,
  apply_experiment_args,
  load_config_file,
)
from blindinv_jax.priors import resolve
from blindinv_jax.refine import SurrogateForward, observation_errors


@partial(backend.jit_step, static_argnames=("surrogate", "config"),
         donate_argnames=("z", "z_opt", "params", "s_opt"))
def population_step(z, z_opt, params, s_opt, y, prior, surrogate, config):
  """One outer step on candidates ``z [R, N, S, L]`` and one theta.
  Returns ``(z, z_opt, params, s_opt, surrogate loss, kept [N])``."""
  unroll = backend.resolve_unroll(config.unroll)
  prior = backend.prior_at_precision(prior, config.precision)
  err = observation_errors(z, params, y, prior, SurrogateForward(surrogate))
  z_best, kept = select_best(err, z)
  x_star = stack_sources(prior.generate(z_best))
  params, s_opt, s_loss = surrogate_phase(params, s_opt, x_star, y,
                                          surrogate, config, unroll)

  def one(z1, o1):
    z1, o1, _ = latent_phase(z1, o1, params, y, prior, surrogate, config,
                             unroll)
    return z1, o1
  z, z_opt = backend.map_restarts(one, z, z_opt)
  return z, z_opt, params, s_opt, s_loss, kept


def population_solve(y, prior, surrogate: str, num_sources: int, config,
                     restarts: int, key):
  """Algorithm 1 with R latent candidates per observation and one theta.
  Returns ``(sources [N, S, H, W, C], candidate kept [N], seconds)``."""
  module = make_surrogate(surrogate, y.shape[-1])
  state = init_state(key, y, prior, module, config.replace(restarts=restarts),
                     num_sources)
  z, z_opt = state.z, state.latent_opt
  first = lambda t: jax.tree_util.tree_map(lambda a: a[0], t)
  params, s_opt = first(state.surrogate_params), first(state.surrogate_opt)
  t0 = time.perf_counter()
  for t in range(config.outer_steps):
    z, z_opt, params, s_opt, s_loss, kept = population_step(
        z, z_opt, params, s_opt, y, prior, module, config)
    if (t + 1) % 10 == 0:
      print(f"  step {t + 1}/{config.outer_steps}: surrogate loss "
            f"{float(s_loss) / y.size:.4f}", flush=True)
  err = observation_errors(z, params, y, prior, SurrogateForward(module))
  z, kept = select_best(err, z)
  x = np.asarray(prior.generate(z))
  return x, np.asarray(kept), time.perf_counter() - t0


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--config", required=True, help="an experiment config")
  ap.add_argument("--candidates", type=int, default=4,
                  help="latent candidates per observation (4); --restarts sets "
                  "the restarts of the Algorithm 1 solve it is compared with")
  ap.add_argument("--out", required=True)
  add_experiment_args(ap)
  ap.set_defaults(split="val")
  args = ap.parse_args(argv)
  cfg = apply_experiment_args(load_config_file(args.config), args).validate()
  prior = resolve(cfg.prior)
  x, y, _, _ = E.simulate(cfg, prior.image_shape)
  sep = cfg.task.kind == "mix"
  key = jax.random.key(cfg.seed)
  rows, estimates = {}, {}
  t0 = time.perf_counter()
  res = solver.solve(y, prior, num_sources=cfg.task.num_sources,
                     surrogate=cfg.surrogate, config=cfg.solver, key=key)
  est = np.asarray(res.sources)
  rows["blind"] = {"seconds": round(time.perf_counter() - t0, 1)}
  estimates["blind"] = est
  print(f"blind: {rows['blind']['seconds']} s", flush=True)
  est, kept, sec = population_solve(y, prior, cfg.surrogate,
                                    cfg.task.num_sources, cfg.solver,
                                    args.candidates, key)
  rows["population"] = {"seconds": round(sec, 1), "restarts": args.candidates,
                        "kept": kept.tolist()}
  estimates["population"] = est
  matched = {}
  for m, e in estimates.items():
    sc = E.score(e, x, sep)
    matched[m] = sc.pop("matched")
    rows[m].update(sc)
  if cfg.classify:
    acc = E.classify_all(cfg, x, matched)
    for m in rows:
      rows[m]["accuracy"] = acc[m]
  out = {"config": args.config, "split": cfg.data.split, "n": cfg.data.n,
         "prior": cfg.prior, "methods": rows,
         "population_minus_blind": E.paired_differences(rows, "population")}
  outdir = pathlib.Path(args.out)
  outdir.mkdir(parents=True, exist_ok=True)
  (outdir / "population.json").write_text(json.dumps(out, indent=1))
  for m, r in rows.items():
    print(f"{m}: PSNR {r['psnr'][0]:.2f} ± {r['psnr'][1]:.2f} dB, read "
          f"{r.get('accuracy', float('nan')):.0%}, {r['seconds']} s")
  d = out["population_minus_blind"]["blind"]
  print(f"population - blind, paired: {d['mean_db']:+.2f} ± "
        f"{d['standard_error_db']} dB, better on {d['better_on']} of "
        f"{d['images']}")
  return out


if __name__ == "__main__":
  try:
    main()
  except (ValueError, FileNotFoundError) as e:
    print(f"population.py: error: {e}", file=sys.stderr)
    sys.exit(2)
