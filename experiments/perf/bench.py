"""Speed of one outer step of Algorithm 1: JAX lowerings against PyTorch.

  python experiments/perf/bench.py [--device cpu|gpu] [--n 1,10,50,200] [--repeats 5]
      [--inner-steps 50] [--no-torch] [--cpu-devices K] [--out docs/bench]
      [--variants default,unrolled,torch_eager,...]
      [--precision float32,bfloat16]

The PyTorch variants need PyTorch (``pip install -e ".[torch]"``); without
it, run ``--no-torch`` (the script says so before any work).

For the shipped MNIST prior at the paper's schedule (T1 = T2 = 50, blurred
held-out digits, conv surrogate), in ONE run, after warm-up, interleaving the
implementations within every repeat and reporting the median:

* JAX ``default``: the solver's defaults (``SolverConfig.unroll=None``,
  ``grad_pieces=None``: a ``fori_loop``, and on CPU the latent gradient in
  one piece per core); ``pieces1``: the same in one piece;
* JAX ``unrolled``: ``unroll="full"``; JAX ``unroll5``: ``unroll=5``;
* JAX ``meshK`` (with ``--cpu-devices K``): the default sharded over K XLA
  CPU devices with :func:`blindinv_jax.parallel.shard`;
* JAX ``ynn_all``: the default without ``backend.STEP_COMPILER_OPTIONS``
  (XLA:CPU's own choice: YNNPACK also runs the convolutions);
* JAX ``python_loop``: a Python loop over a jitted single surrogate step and
  a jitted single latent step (what a naive port does);
* PyTorch ``eager`` (``experiments/perf/torch_reference.py``, same weights, same
  start, on the same device as JAX) and ``torch.compile`` of its networks
  where it works.

``--precision`` runs every variant at each listed precision of the frozen
G and D (``SolverConfig.precision``; PyTorch: ``torch.autocast`` around G and
D for ``bfloat16``, the TF32 switches for ``tensorfloat32``, both off for
``float32``); each row's ratio is against PyTorch eager at the same
precision.

Reports seconds per outer step, each JAX/PyTorch-eager ratio, JIT compile
time, XLA's FLOP count of the outer step (``cost_analysis`` of the compiled,
fully unrolled program, the same arithmetic for every JAX variant) and the
achieved FLOP rate (the count is affine in T1 and T2 and is read off
three small unrolled programs) against this machine's measured ceiling (a
4096^2 float32 matmul and a 3x3 convolution timed here), seconds per
observation as N grows, and peak resident memory. Writes ``bench.json`` and ``bench.md``.
"""
import argparse
import functools
import json
import os
import pathlib
import resource
import sys
import time


def _cpu_devices(argv):
  """--cpu-devices K must reach XLA before JAX starts."""
  for i, a in enumerate(argv):
    if a.startswith("--cpu-devices"):
      k = a.split("=", 1)[1] if "=" in a else argv[i + 1]
      flags = os.environ.get("XLA_FLAGS", "")
      if "host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_force_host_platform_device_count={int(k)}")


_cpu_devices(sys.argv[1:])

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from blindinv_jax.precision import PRECISIONS  # noqa: E402

from timing import interleaved_medians, machine_info, machine_line, median_time  # noqa: E402


def ceiling(repeats=5):
  """Measured float32 GFLOP/s of a big matmul and a big convolution."""
  n = 4096
  a = jax.random.normal(jax.random.key(0), (n, n))
  mm = jax.jit(lambda a: a @ a)
  t_mm = median_time(lambda: mm(a).block_until_ready(), repeats)
  x = jax.random.normal(jax.random.key(1), (64, 56, 56, 64))
  w = jax.random.normal(jax.random.key(2), (3, 3, 64, 64))
  conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(
      x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))
  t_cv = median_time(lambda: conv(x, w).block_until_ready(), repeats)
  return {"matmul_gflops": round(2 * n ** 3 / t_mm / 1e9, 1),
          "conv_gflops": round(2 * 64 * 56 * 56 * 64 * 64 * 9 / t_cv / 1e9, 1)}


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost.get("flops", 0.0))


JAX_VARIANTS = ("default", "pieces1", "unrolled", "unroll5", "mesh",
                "ynn_all", "python_loop")
TORCH_VARIANTS = ("torch_eager", "torch_compile")


def unrolled_flops(state0, y, prior, module, cfg) -> float:
  """XLA's FLOP count of a fully unrolled outer step at ``cfg``'s T1, T2.

  The count is affine in T1 and T2, so it is read off three small unrolled
  programs (T1, T2 in {1, 2}) instead of compiling the full one (60-100 s).
  """
  from blindinv_jax import algorithm, runner

  def count(t1, t2):
    c = cfg.replace(surrogate_steps=t1, latent_steps=t2, unroll="full")
    return _flops(runner.Compiled(
        algorithm.outer_step, settings=runner.Settings.of(c),
        surrogate=module, config=c).lower(state0, y, prior=prior).compile())
  f11, f21, f12 = count(1, 1), count(2, 1), count(1, 2)
  return (f11 + (cfg.surrogate_steps - 1) * (f21 - f11) +
          (cfg.latent_steps - 1) * (f12 - f11))


def jax_impls(y, prior, cfg, wanted=JAX_VARIANTS):
  """name -> (compile seconds, flops, step function) for the JAX variants."""
  from blindinv_jax import algorithm, backend, runner, solver
  from blindinv_jax.models.surrogates import make_surrogate
  from blindinv_jax.parallel import shard
  module = make_surrogate("conv", 1)
  state0 = solver.init_state(jax.random.key(0), y, prior, module, cfg, 1)
  impls = {}
  variants = [("default", {}), ("pieces1", {"grad_pieces": 1}),
              ("unrolled", {"unroll": "full"}), ("unroll5", {"unroll": 5}),
              ("ynn_all", {"plain": True})]
  ndev = len(jax.devices())
  if ndev > 1 and y.shape[0] % ndev == 0:
    variants.append((f"mesh{ndev}", {"mesh": True}))
  variants = [(n, kw) for n, kw in variants
              if n in wanted or ("mesh" in wanted and kw.get("mesh"))]
  # The solver's step without backend.STEP_COMPILER_OPTIONS: YNNPACK also
  # takes the convolutions (XLA:CPU's own default).
  plain = jax.jit(algorithm.outer_step,
                  static_argnames=("surrogate", "config"),
                  donate_argnames=("state",))
  flops = None
  for name, kw in variants:
    c = cfg.replace(**{k: v for k, v in kw.items()
                       if k not in ("mesh", "plain")})
    st, yy = state0, y
    if kw.get("mesh"):
      mesh = jax.make_mesh((ndev,), ("data",))
      yy, st = shard(mesh, y, jax.tree_util.tree_map(jnp.copy, state0),
                            c)
    t0 = time.perf_counter()
    if kw.get("plain"):
      compiled = plain.lower(st, yy, prior, module, c).compile()
      call = lambda compiled, st, yy: compiled(st, yy, prior)
    else:
      compiled = runner.Compiled(
          algorithm.outer_step, settings=runner.Settings.of(c),
          surrogate=module, config=c).lower(st, yy, prior=prior).compile()
      call = lambda compiled, st, yy: compiled(st, (yy,), prior)
    compile_s = time.perf_counter() - t0
    if c.unroll == "full" or (c.unroll is None and
                               backend.default_unroll() == "full"):
      # XLA's count after optimisation; a while loop's body would be counted
      # once, not once per trip, so the count comes from an unrolled program.
      flops = _flops(compiled)
    holder = {"state": jax.tree_util.tree_map(jnp.copy, st)}

    def step(compiled=compiled, holder=holder, yy=yy, call=call):
      holder["state"], m = call(compiled, holder["state"], yy)
      jax.block_until_ready(m["latent_loss"])
    impls[f"jax_{name}"] = [compile_s, None, step]
  if flops is None:
    flops = unrolled_flops(state0, y, prior, module, cfg)
  for v in impls.values():
    v[1] = flops

  if "python_loop" not in wanted:
    return {k: tuple(v) for k, v in impls.items()}, state0
  # A naive port: Python loops over jitted single inner steps.
  one = cfg.replace(surrogate_steps=1, latent_steps=1, unroll=1)

  @jax.jit
  def s_step(params, opt, x_stacked):
    return algorithm.surrogate_phase(params, opt, x_stacked, y, module, one, 1)

  @jax.jit
  def z_step(z, opt, params):
    return algorithm.latent_phase(z, opt, params, y, prior, module, one, 1)

  gen = jax.jit(lambda z: algorithm.stack_sources(prior.generate(z)))
  pick = lambda t: jax.tree_util.tree_map(lambda a: a[0], t)
  naive = {"z": state0.z[0], "p": pick(state0.surrogate_params),
           "so": pick(state0.surrogate_opt), "zo": pick(state0.latent_opt)}
  t0 = time.perf_counter()
  s_step(naive["p"], naive["so"], gen(naive["z"]))[2].block_until_ready()
  z_step(naive["z"], naive["zo"], naive["p"])[0].block_until_ready()
  compile_s = time.perf_counter() - t0

  def python_loop():
    x = gen(naive["z"])
    for _ in range(cfg.surrogate_steps):
      naive["p"], naive["so"], _ = s_step(naive["p"], naive["so"], x)
    for _ in range(cfg.latent_steps):
      naive["z"], naive["zo"], _ = z_step(naive["z"], naive["zo"], naive["p"])
    jax.block_until_ready(naive["z"])
  impls["jax_python_loop"] = (compile_s, flops, python_loop)
  return {k: tuple(v) for k, v in impls.items()}, state0


@functools.lru_cache(maxsize=1)
def torch_reference():
  """``experiments/perf/torch_reference.py`` as a module (loaded once)."""
  import importlib.util
  spec = importlib.util.spec_from_file_location(
      "torch_reference", pathlib.Path(__file__).parent / "torch_reference.py")
  ref = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(ref)
  return ref


def torch_impls(y, prior, cfg, state0, threads, wanted=TORCH_VARIANTS,
                precision="float32"):
  """name -> (compile seconds, None, step) for the PyTorch variants, on
  JAX's device, G and D at ``precision``."""
  import torch
  if threads:
    torch.set_num_threads(threads)
  ref = torch_reference()
  device = "cuda" if jax.default_backend() == "gpu" else "cpu"
  ref.set_float32_mode(precision)
  z0 = np.asarray(state0.z[0])
  p0 = jax.tree_util.tree_map(lambda a: np.asarray(a[0]),
                              state0.surrogate_params)
  impls = {}
  make = lambda: list(ref.make_problem(prior, y, cfg, z0, p0, device=device,
                                       precision=precision))
  prob = make()

  def eager(prob=prob):
    ref.outer_step(*prob[:6], prob[6], cfg)
  impls["torch_eager"] = (0.0, None, eager)   # the ratios' reference
  if "torch_compile" not in wanted:
    return impls
  try:
    prob_c = make()
    g, d, sur = prob_c[0], prob_c[1], prob_c[2]
    prob_c[0] = torch.compile(g)
    prob_c[1] = torch.compile(d)
    prob_c[2] = torch.compile(sur)
    t0 = time.perf_counter()
    ref.outer_step(*prob_c[:6], prob_c[6], cfg.replace(surrogate_steps=2,
                                                       latent_steps=2))
    compile_s = time.perf_counter() - t0

    def compiled(prob_c=prob_c):
      ref.outer_step(*prob_c[:6], prob_c[6], cfg)
    impls["torch_compile"] = (compile_s, None, compiled)
  except Exception as e:  # torch.compile needs a C++ toolchain
    print(f"torch.compile unavailable: {type(e).__name__}: {e}"[:300])
  return impls


def _in_mode(precision, fn):
  """``fn`` run with PyTorch's TF32 switches set for ``precision`` (they are
  global, and the variants of several precisions take turns)."""
  def run():
    if "torch" in sys.modules:
      torch_reference().set_float32_mode(precision)
    fn()
  return run


def torch_available() -> bool:
  """Whether PyTorch can be imported (without importing it)."""
  import importlib.util
  return importlib.util.find_spec("torch") is not None


NEEDS_TORCH = ("the PyTorch variants ({variants}) need PyTorch, which is not "
               "installed: pip install -e \".[torch]\" (from the repository "
               "root), or leave them out with --no-torch (or --variants with "
               "JAX variants only)")


def build_parser() -> argparse.ArgumentParser:
  ap = argparse.ArgumentParser(
      description=__doc__.split("\n")[0] + " The PyTorch variants need "
      "PyTorch: pip install -e \".[torch]\".")
  ap.add_argument("--device", choices=("cpu", "gpu"), default=None,
                  help="run JAX (and PyTorch) on this device (default: JAX's "
                  "default backend)")
  ap.add_argument("--n", default="1,10,50,200",
                  help="comma-separated numbers of observations N, one "
                  "table block each (default 1,10,50,200)")
  ap.add_argument("--repeats", type=int, default=5,
                  help="timed outer steps per variant, after warm-up; the "
                  "median is reported (default 5)")
  ap.add_argument("--inner-steps", type=int, default=50,
                  help="T1 = T2, Adam steps of each phase per outer step "
                  "(default 50, the paper's)")
  ap.add_argument("--no-torch", action="store_true",
                  help="skip the PyTorch variants (no PyTorch needed)")
  ap.add_argument("--torch-threads", type=int, default=None,
                  help="torch.set_num_threads for the PyTorch variants "
                  "(default: PyTorch's own)")
  ap.add_argument("--cpu-devices", type=int, default=None,
                  help="split the host CPU into K XLA devices and add a "
                  "variant sharded over them (parallel.shard)")
  ap.add_argument("--variants", default=",".join(JAX_VARIANTS +
                                                   TORCH_VARIANTS),
                  help="comma-separated subset of " +
                  ", ".join(JAX_VARIANTS + TORCH_VARIANTS) + " (default: "
                  "all; the torch_ ones need PyTorch)")
  ap.add_argument("--precision", default="float32",
                  help="comma-separated precisions of G and D ("
                  f"{', '.join(PRECISIONS)}): every variant runs at each "
                  "(default float32)")
  ap.add_argument("--out", default="docs/bench",
                  help="folder for bench.json and bench.md (default "
                  "docs/bench)")
  return ap


def main(argv=None):
  from blindinv_jax import data, operators as ops, solver
  from blindinv_jax.priors import load_prior
  ap = build_parser()
  args = ap.parse_args(argv)
  precisions = [p.strip() for p in args.precision.split(",")]
  bad = set(precisions) - set(PRECISIONS)
  if bad:
    ap.error(f"unknown --precision {sorted(bad)}")
  wanted = tuple(v.strip() for v in args.variants.split(","))
  unknown = set(wanted) - set(JAX_VARIANTS + TORCH_VARIANTS)
  if unknown:
    ap.error(f"unknown --variants {sorted(unknown)}; choose from "
             f"{', '.join(JAX_VARIANTS + TORCH_VARIANTS)}")
  torch_wanted = [] if args.no_torch else [v for v in wanted
                                           if v in TORCH_VARIANTS]
  if torch_wanted and not torch_available():       # before any work
    ap.error(NEEDS_TORCH.format(variants=", ".join(torch_wanted)))
  if args.device:
    jax.config.update("jax_platforms", args.device.replace("gpu", "cuda"))
  prior = load_prior("mnist")
  cfg = solver.PAPER.replace(surrogate_steps=args.inner_steps,
                             latent_steps=args.inner_steps)
  machine = {**machine_info(), "cpu_count": os.cpu_count(), **ceiling()}
  print("machine:", machine, flush=True)
  rows = []
  for n in [int(v) for v in args.n.split(",")]:
    x = data.load_images("mnist5k", "test", limit=n)
    y = ops.blur(jnp.asarray(x), ops.gaussian_kernel(9, 2.0), "zero")
    impls = {}
    for prec in precisions:
      c = cfg.replace(precision=prec)
      jx, state0 = jax_impls(y, prior, c, wanted)
      impls.update({(prec, k): v for k, v in jx.items()})
      if not args.no_torch and set(wanted) & set(TORCH_VARIANTS):
        tx = torch_impls(np.asarray(y), prior, c, state0, args.torch_threads,
                         wanted, prec)
        impls.update({(prec, k): v for k, v in tx.items()})
    medians = interleaved_medians(
        {k: _in_mode(k[0], fn) for k, (_, _, fn) in impls.items()},
        args.repeats)
    for (prec, k), (compile_s, flops, _) in impls.items():
      med = medians[prec, k]
      base = medians.get((prec, "torch_eager"))
      row = {"n": n, "impl": k, "precision": prec, "step_s": round(med, 4),
             "s_per_observation": round(med / n, 5),
             "compile_s": round(compile_s, 2)}
      if flops:
        row["gflop"] = round(flops / 1e9, 2)
        row["gflops_achieved"] = round(flops / med / 1e9, 1)
        row["fraction_of_matmul_ceiling"] = round(
            flops / med / 1e9 / machine["matmul_gflops"], 3)
      if base:
        row["speedup_vs_torch_eager"] = round(base / med, 2)
      rows.append(row)
      print(row, flush=True)
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  stats = jax.devices()[0].memory_stats() or {}   # None on CPU
  peak_dev = stats.get("peak_bytes_in_use")
  result = {"machine": machine, "inner_steps": args.inner_steps,
            "repeats": args.repeats, "peak_rss_mb": round(peak, 1),
            "peak_device_mb": peak_dev and round(peak_dev / 2**20, 1),
            "rows": rows}
  (out / "bench.json").write_text(json.dumps(result, indent=1))
  lines = [f"Machine: {machine_line(machine)}; ceiling "
           f"{machine['matmul_gflops']} GFLOP/s "
           f"(matmul), {machine['conv_gflops']} GFLOP/s (conv). T1 = T2 = "
           f"{args.inner_steps}; median of {args.repeats}; peak RSS "
           f"{peak:.0f} MB" + (f", peak device memory {peak_dev / 2**20:.0f} MB"
                               if peak_dev else "") + ".", "",
           "| N | implementation | precision | s / outer step | "
           "s / observation | vs torch eager | compile (s) | GFLOP | "
           "GFLOP/s (% of ceiling) |",
           "|---|---|---|---|---|---|---|---|---|"]
  for r in rows:
    lines.append(
        f"| {r['n']} | {r['impl']} | {r['precision']} | {r['step_s']} | "
        f"{r['s_per_observation']}"
        f" | {r.get('speedup_vs_torch_eager', '')} | {r['compile_s']} | "
        f"{r.get('gflop', '')} | " + (
            f"{r['gflops_achieved']} ({100 * r['fraction_of_matmul_ceiling']:.0f}%)"
            if "gflops_achieved" in r else "") + " |")
  (out / "bench.md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
