"""Does any JAX path reach this CPU's bfloat16 units for the solver's network?

  python experiments/perf/bf16_paths.py [--repeats 5] [--n 50] [--out docs/bench]

In ONE run, interleaved (median of ``--repeats``), float32 against bfloat16:

* bare products: a 2048^2 matmul, the 9800x576x64 matmul of an im2col 3x3
  convolution, and a 3x3 64->32 convolution on [50, 14, 14, 64];
* the solver's latent step at N observations: value and gradient of the
  L1 data loss through G and the conv surrogate plus the perceptual term
  through D (``SolverConfig.precision``'s cast, :mod:`blindinv_jax.precision`),
  and the same at 4N (restarts or observations batched into larger
  products), per observation;
* under three XLA:CPU option sets: ``solver`` (``backend.STEP_COMPILER_OPTIONS``:
  YNNPACK for matrix products only), ``xla_default`` (YNNPACK for products
  and convolutions), ``no_excess_precision`` (``xla_allow_excess_precision``
  off: XLA may not compute bfloat16 in float32);
* PyTorch (if installed): the same latent step in float32 and under
  ``torch.autocast("cpu", bfloat16)`` around G and D (oneDNN).

For each compiled JAX program it also reads the optimised HLO: whether the
bfloat16 convolutions and matrix products are still bfloat16 there, or were
converted to float32 by XLA. Writes ``bf16_paths.json`` and ``bf16_paths.md``.
"""
import argparse
import json
import pathlib
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from blindinv_jax import algorithm, backend, precision  # noqa: E402
from blindinv_jax.models.surrogates import make_surrogate  # noqa: E402
from blindinv_jax.solver import TUNED  # noqa: E402

from timing import interleaved_medians, machine_info, machine_line  # noqa: E402

OPTION_SETS = {
    "solver": backend.STEP_COMPILER_OPTIONS,
    "xla_default": {},
    "no_excess_precision": {**backend.STEP_COMPILER_OPTIONS,
                            "xla_allow_excess_precision": False},
}
_DN = ("NHWC", "HWIO", "NHWC")


def product_dtypes(compiled) -> str:
  """The element types the optimised program's convolutions and matrix
  products compute in (e.g. ``"f32"``, ``"bf16"``, ``"bf16,f32"``)."""
  txt = compiled.as_text()
  kinds = set(re.findall(r"= (\w+)\[[^\]]*\]\S* (?:dot|convolution)\(", txt))
  return ",".join(sorted(kinds)) or "none"


def bare_products():
  """name -> (flops, f(dtype) -> (fn, args))."""
  k = jax.random.split(jax.random.key(0), 6)
  a = jax.random.normal(k[0], (2048, 2048))
  b, c = jax.random.normal(k[1], (9800, 576)), jax.random.normal(k[2], (576, 64))
  x = jax.random.normal(k[3], (50, 14, 14, 64))
  w = jax.random.normal(k[4], (3, 3, 64, 32))
  conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                                   dimension_numbers=_DN)
  return {"matmul 2048^2": (2 * 2048 ** 3, lambda a: a @ a, (a,)),
          "matmul 9800x576x64": (2 * 9800 * 576 * 64, jnp.matmul, (b, c)),
          "conv 3x3 64->32 [50,14,14]": (2 * 50 * 14 * 14 * 64 * 32 * 9, conv,
                                         (x, w))}


def latent_problem(prior, n: int):
  """``(loss, (z, prior, params, y))``: Algorithm 1's latent loss at n
  observations (``loss(z, prior, params, y, precision)``), and its inputs."""
  module = make_surrogate("conv", 1)
  z = prior.sample_latents(jax.random.key(1), (n, 1))
  y = jnp.tanh(jax.random.normal(jax.random.key(2), (n, 28, 28, 1)))
  params = module.init(jax.random.key(3), jnp.zeros((1, 28, 28, 1)))

  def loss(z, prior, params, y, prec):
    low = precision.lower_prior(prior, prec)
    x = low.generate(z)
    y_est = module.apply(params, algorithm.stack_sources(x))
    return algorithm.data_loss(y_est, y, "l1") + TUNED.alpha * jnp.sum(
        algorithm.perceptual_loss(low, x))
  return loss, (z, prior, params, y)


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--n", type=int, default=50)
  ap.add_argument("--repeats", type=int, default=5)
  ap.add_argument("--no-torch", action="store_true")
  ap.add_argument("--out", default="docs/bench")
  args = ap.parse_args(argv)
  from blindinv_jax.priors import load_prior
  prior = load_prior("mnist")
  machine = machine_info()
  print("machine:", machine_line(machine), flush=True)
  fns, meta = {}, {}
  problems = {n: latent_problem(prior, n) for n in (args.n, 4 * args.n)}
  for opt_name, opts in OPTION_SETS.items():
    for name, (flops, f, xs) in bare_products().items():
      for dt in ("float32", "bfloat16"):
        xs_d = tuple(a.astype(dt) for a in xs)
        c = jax.jit(f, compiler_options=opts).lower(*xs_d).compile()
        fns[opt_name, name, dt] = (lambda c=c, xs=xs_d:
                                   c(*xs).block_until_ready())
        meta[opt_name, name, dt] = {"flops": flops,
                                    "computes_in": product_dtypes(c)}
    for n, (loss, xs) in problems.items():
      for dt in ("float32", "bfloat16"):
        g = jax.jit(jax.value_and_grad(loss), static_argnums=4,
                    compiler_options=opts)
        c = g.lower(*xs, dt).compile()
        name = f"latent step N={n}"
        fns[opt_name, name, dt] = (lambda c=c, xs=xs:
                                   jax.block_until_ready(c(*xs)))
        meta[opt_name, name, dt] = {"n": n, "computes_in": product_dtypes(c)}
  if not args.no_torch:
    fns.update(torch_latent_steps(problems, meta))
  print(f"timing {len(fns)} programs, {args.repeats} repeats", flush=True)
  med = interleaved_medians(fns, args.repeats)
  rows = []
  for key, m in meta.items():
    r = {"options": key[0], "what": key[1], "dtype": key[2],
         "ms": round(1e3 * med[key], 2), **m}
    if "flops" in m:
      r["gflops"] = round(m["flops"] / med[key] / 1e9, 1)
    if "n" in m:
      r["ms_per_observation"] = round(1e3 * med[key] / m["n"], 3)
    rows.append(r)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / "bf16_paths.json").write_text(json.dumps(
      {"machine": machine, "repeats": args.repeats, "rows": rows}, indent=1))
  lines = [f"Machine: {machine_line(machine)}. Median of {args.repeats}, "
           "interleaved. `computes in`: the element type of the "
           "optimised program's convolutions and matrix products.", "",
           "| XLA options / framework | what | float32 | bfloat16 | "
           "bf16 speed-up | bf16 computes in |", "|---|---|---|---|---|---|"]
  by = {(r["options"], r["what"], r["dtype"]): r for r in rows}
  for (o, w, d), r in by.items():
    if d != "float32":
      continue
    b = by.get((o, w, "bfloat16"))
    unit = (lambda r: f"{r['ms']} ms ({r['gflops']} GFLOP/s)") if (
        "gflops" in r) else (lambda r: f"{r['ms']} ms")
    lines.append(f"| {o} | {w} | {unit(r)} | {unit(b) if b else ''} | "
                 f"{r['ms'] / b['ms']:.2f}x | {b['computes_in']} |"
                 if b else f"| {o} | {w} | {unit(r)} | | | |")
  (out / "bf16_paths.md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))


def torch_latent_steps(problems: dict, meta: dict) -> dict:
  """The same latent steps (``problems``: n -> :func:`latent_problem`) in
  PyTorch, float32 and autocast bfloat16; {} without torch."""
  try:
    import torch  # noqa: F401
  except ImportError:
    return {}
  import torch_reference as ref
  fns = {}
  for n, (_, (z0, prior, params, y)) in problems.items():
    for dt in ("float32", "bfloat16"):
      g, d, sur, _, z, _, yt = ref.make_problem(
          prior, np.asarray(y), TUNED, np.asarray(z0), params, precision=dt)
      for q in sur.parameters():
        q.requires_grad_(False)

      def run(g=g, d=d, sur=sur, z=z, yt=yt):
        z.grad = None
        loss, _ = ref.latent_loss(g, d, sur, z, yt, TUNED.alpha)
        loss.backward()
      name = f"latent step N={n}"
      fns["pytorch (oneDNN)", name, dt] = run
      meta["pytorch (oneDNN)", name, dt] = {
          "n": n, "computes_in": "bf16 (autocast)" if dt == "bfloat16"
          else "f32"}
  return fns


if __name__ == "__main__":
  main()
