"""Where one outer step's time goes, per XLA:CPU operation (the "why" behind
the benchmark's numbers).

  python experiments/perf/profile_step.py [--n 50] [--inner-steps 10]
      [--grad-pieces 1] [--out docs/bench/profile.json]
  taskset -c 0 python experiments/perf/profile_step.py ...   # the same on 1 core

Compiles one outer step (the shipped MNIST prior, blurred held-out digits,
conv surrogate, the paper's learning rates, T1 = T2 = ``--inner-steps``,
fully unrolled or as ``--unroll``), times it (median of 5), then traces 3 runs with
``jax.profiler`` and sums the time of every XLA:CPU thunk (each fused
operation or library convolution) per kind and output shape. Every
convolution's FLOPs are known from its shape, so the table shows which
operations run near the machine's speed and which do not. Also times the
latent step alone (generator forward and backward, no surrogate) to separate
the generator from the rest. With ``--torch``, the same outer step of the
PyTorch reference (same weights, same start) is profiled with
``torch.profiler``: self CPU time per operator and input shape, so both
sides' tables can be read together. Writes the tables as JSON and prints
them.
"""
import argparse
import collections
import glob
import json
import pathlib
import re
import tempfile

import jax
import jax.numpy as jnp

from blindinv_jax.backend import usable_cores

from timing import median_time


def thunk_profile(run, hlo_text, calls):
  """{(thunk kind, output shape): ms per call} from a profiler trace."""
  from jax._src.lib import _profile_data
  with tempfile.TemporaryDirectory() as d:
    with jax.profiler.trace(d):
      for _ in range(calls):
        run()
    path = glob.glob(f"{d}/**/*.xplane.pb", recursive=True)[0]
    pd = _profile_data.ProfileData.from_file(path)
    per_name = collections.Counter()
    for plane in pd.planes:
      for line in plane.lines:
        if not line.name.startswith("tf_XLA"):
          continue
        for ev in line.events:
          if not ev.name.startswith(("ThunkExecutor", "end:")):
            per_name[ev.name] += ev.duration_ns
  shapes = {}
  for line in hlo_text.splitlines():
    m = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = (\S+) ", line)
    if m:
      shapes[m.group(1)] = re.sub(r"\{.*\}", "", m.group(2))
  table = collections.Counter()
  for name, ns in per_name.items():
    table[(re.sub(r"\.\d+$", "", name), shapes.get(name, "?"))] += ns
  return {k: v / 1e6 / calls for k, v in table.items()}


def torch_profile(prior, y, cfg, state0, top: int) -> dict:
  """Self CPU ms per operator (and input shapes) of one PyTorch outer step."""
  import numpy as np
  import torch
  import torch_reference as ref
  from torch.profiler import ProfilerActivity, profile
  z0 = np.asarray(state0.z[0])
  p0 = jax.tree_util.tree_map(lambda a: np.asarray(a[0]),
                              state0.surrogate_params)
  prob = ref.make_problem(prior, np.asarray(y), cfg, z0, p0)
  step = lambda: ref.outer_step(*prob[:6], prob[6], cfg)
  step_s = median_time(step)
  with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
    step()
  rows = []
  for e in prof.key_averages(group_by_input_shape=True):
    rows.append({"op": e.key, "input_shapes": str(e.input_shapes)[:80],
                 "calls": e.count,
                 "ms_per_outer_step": round(e.self_cpu_time_total / 1e3, 2)})
  rows.sort(key=lambda r: -r["ms_per_outer_step"])
  total = sum(r["ms_per_outer_step"] for r in rows)
  for r in rows:
    r["share"] = round(r["ms_per_outer_step"] / total, 3)
  print(f"\nPyTorch eager ({torch.get_num_threads()} threads): outer step "
        f"{step_s:.3f} s; sum of self CPU times {total / 1e3:.3f} s")
  print(f"{'ms/step':>9} {'share':>6} {'calls':>6}  op  input shapes")
  for r in rows[:top]:
    print(f"{r['ms_per_outer_step']:9.1f} {100 * r['share']:5.1f}% "
          f"{r['calls']:6d}  {r['op']}  {r['input_shapes']}")
  return {"torch_outer_step_s": round(step_s, 3), "torch_rows": rows[:100]}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--n", type=int, default=50)
  ap.add_argument("--inner-steps", type=int, default=10)
  ap.add_argument("--grad-pieces", type=int, default=None,
                  help="SolverConfig.grad_pieces (default: one per core)")
  ap.add_argument("--unroll", default="full",
                  help="SolverConfig.unroll: 'full' or an int (1: fori_loop)")
  ap.add_argument("--top", type=int, default=20)
  ap.add_argument("--torch", action="store_true",
                  help="also profile the PyTorch reference's outer step")
  ap.add_argument("--out", default=None)
  args = ap.parse_args(argv)
  from blindinv_jax import algorithm, runner, solver
  from blindinv_jax.demo import blurred_digits
  from blindinv_jax.models.surrogates import make_surrogate
  from blindinv_jax.priors import load_prior
  prior = load_prior("mnist")
  _, y, _ = blurred_digits("blur", "test", args.n)
  t = args.inner_steps
  cfg = solver.PAPER.replace(surrogate_steps=t, latent_steps=t,
                             unroll=("full" if args.unroll == "full"
                                     else int(args.unroll)),
                             grad_pieces=args.grad_pieces)
  module = make_surrogate("conv", 1)
  state0 = solver.init_state(jax.random.key(0), y, prior, module, cfg, 1)
  compiled = runner.Compiled(algorithm.outer_step,
                             settings=runner.Settings.of(cfg),
                             surrogate=module, config=cfg).lower(
                                 state0, y, prior=prior).compile()

  def run():
    s = jax.tree_util.tree_map(jnp.copy, state0)
    jax.block_until_ready(compiled(s, (y,), prior)[1]["latent_loss"])
  step_s = median_time(run)

  # The generator alone: t plain gradient steps on z through G.
  z0 = state0.z[0]
  loss = lambda z: jnp.sum(jnp.abs(prior.generate(z)[:, 0] - y))
  g_only = jax.jit(lambda z: jax.lax.fori_loop(
      0, t, lambda _, z: jnp.clip(z - 1e-3 * jax.grad(loss)(z), -1, 1), z,
      unroll=True))
  g_s = median_time(lambda: g_only(z0).block_until_ready())

  table = thunk_profile(run, compiled.as_text(), 3)
  total = sum(table.values())
  cores = usable_cores()
  rows = [{"thunk": k[0], "output": k[1], "ms_per_outer_step": round(v, 2),
           "share": round(v / total, 3)}
          for k, v in sorted(table.items(), key=lambda kv: -kv[1])]
  result = {"n": args.n, "inner_steps": t, "cores": cores,
            "unroll": args.unroll,
            "grad_pieces": args.grad_pieces, "outer_step_s": round(step_s, 3),
            "generator_latent_step_ms": round(1e3 * g_s / t, 1),
            "thunk_sum_s": round(total / 1e3, 3), "rows": rows}
  print(f"{cores} cores, N={args.n}, T1=T2={t}, unroll {args.unroll}, "
        f"grad pieces {args.grad_pieces or 'default'}: outer step {step_s:.3f} s; "
        f"generator-only latent step {1e3 * g_s / t:.1f} ms; sum of thunk "
        f"times {total / 1e3:.3f} s (above the wall time when thunks overlap)")
  print(f"{'ms/step':>9} {'share':>6}  thunk  output")
  for r in rows[:args.top]:
    print(f"{r['ms_per_outer_step']:9.1f} {100 * r['share']:5.1f}%  "
          f"{r['thunk']}  {r['output']}")
  if args.torch:
    result.update(torch_profile(prior, y, cfg, state0, args.top))
  if args.out:
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1))
  return result


if __name__ == "__main__":
  main()
