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
      --config=experiments/paper/configs/mnist_sep4.py \\
      --config.data.split=val --config.data.n=10 --candidates=4 \\
      --out=runs/population_sep4_val

It writes ``<out>/population.json``.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
import time
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import backend, experiment as E, metrics, runner, solver
from blindinv_jax.algorithm import (
  latent_phase,
  select_best,
  stack_sources,
  surrogate_phase,
)
from blindinv_jax.latent import ParamForward, observation_errors
from blindinv_jax.models.surrogates import make_surrogate
from blindinv_jax.options import parse_flags
from blindinv_jax.priors import resolve


class PopulationState(flax.struct.PyTreeNode):
  """Candidates ``z [R, N, S, L]`` and their Adam state; one theta and its
  Adam state."""
  z: jax.Array
  z_opt: Any
  params: Any
  s_opt: Any


def population_step(state: PopulationState, y, *, prior, unroll, surrogate,
                    config):
  """One outer step on the candidates and the one theta (a step for
  :func:`blindinv_jax.runner.run`). Metrics: the surrogate loss and which
  candidate each observation kept for it (``[N]``)."""
  forward = ParamForward(surrogate=surrogate)
  err = observation_errors(state.z, state.params, y, prior, forward)
  z_best, kept = select_best(err, state.z)
  x_star = stack_sources(prior.generate(z_best))
  params, s_opt, s_loss = surrogate_phase(state.params, state.s_opt, x_star,
                                          y, surrogate, config, unroll)

  def one(z1, o1):
    z1, o1, _ = latent_phase(z1, o1, params, y, prior, surrogate, config,
                             unroll)
    return z1, o1
  z, z_opt = backend.map_restarts(one, state.z, state.z_opt)
  return (PopulationState(z=z, z_opt=z_opt, params=params, s_opt=s_opt),
          {"surrogate_loss": s_loss, "kept": kept})


def population_solve(y, prior, surrogate: str, num_sources: int, config,
                     restarts: int, key, checkpoint_dir=None):
  """Algorithm 1 with R latent candidates per observation and one theta.
  Returns ``(sources [N, S, H, W, C], candidate kept [N], seconds)``;
  with ``checkpoint_dir`` it checkpoints and resumes there."""
  module = make_surrogate(surrogate, y.shape[-1])
  state = solver.init_state(key, y, prior, module,
                            config.replace(restarts=restarts), num_sources)
  first = lambda t: jax.tree_util.tree_map(lambda a: a[0], t)
  state = PopulationState(z=state.z, z_opt=state.latent_opt,
                          params=first(state.surrogate_params),
                          s_opt=first(state.surrogate_opt))
  ckpt = None
  if checkpoint_dir is not None:
    ident = solver.solve_identity(np.asarray(y), prior, module, config,
                                  num_sources, key)
    ckpt = runner.Checkpoint(pathlib.Path(checkpoint_dir) / "population.ckpt",
                             kind="population_state",
                             identity={**ident, "candidates": restarts})

  def report(t, m):
    if t % 10 == 0:
      print(f"  step {t}/{config.outer_steps}: surrogate loss "
            f"{float(m['surrogate_loss']) / y.size:.4f}", flush=True)
  t0 = time.perf_counter()
  out = runner.run(population_step, state, jnp.asarray(y), prior=prior,
                   steps=config.outer_steps,
                   settings=runner.Settings.of(config),
                   static={"surrogate": module, "config": config},
                   callback=report, checkpoint=ckpt, unit="outer step")
  state = out.state
  err = runner.jitted(observation_errors, ("forward",))(
      state.z, state.params, y, prior, ParamForward(surrogate=module))
  z, kept = select_best(err, state.z)
  x = np.asarray(prior.generate(z))
  return x, np.asarray(kept), time.perf_counter() - t0


def define(fv):
  from absl import flags
  flags.DEFINE_integer("candidates", 4, "latent candidates per observation "
                       "(--config.solver.restarts sets the restarts of the "
                       "Algorithm 1 solve it is compared with)",
                       flag_values=fv)
  flags.DEFINE_string("out", None, "output folder", flag_values=fv,
                      required=True)


def main(argv=None):
  cfg, args = parse_flags(argv, __doc__, define)
  if not any(a.startswith("--config.data.split") for a in
             (sys.argv if argv is None else argv)):
    cfg = cfg.replace(data=dataclasses.replace(cfg.data, split="val"))
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
    sc = metrics.score(e, x, sep)
    matched[m] = sc.pop("matched")
    rows[m].update(sc)
  if cfg.classify:
    acc = E.classify_all(cfg, x, matched)
    for m in rows:
      rows[m]["accuracy"] = acc[m]
  out = {"config": cfg.name, "split": cfg.data.split, "n": cfg.data.n,
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
