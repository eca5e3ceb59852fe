"""A convolution's weight gradient on XLA:CPU: autodiff's form against the
canonical one of ``models/layers.py`` (``_conv_weight_grad``), inside a
``fori_loop`` and in a plain jitted call.

  python experiments/perf/bench_wgrad.py [--repeats 5] [--out docs/bench/wgrad.json]

For each layer shape (the MNIST surrogate's 1->16 and 16->1 5x5 layers, and
wider generator-like layers) it times one weight gradient, both ways, under
the solver's ``backend.STEP_COMPILER_OPTIONS``, checks that they agree, and writes
the table as JSON. Then times one MNIST28 GAN training step (batch 64)
with ``layers._THIN`` at 0 (autodiff's form everywhere), 4 (the default) and
16, interleaved: the numbers behind the threshold.
"""
import argparse
import json
import pathlib

import jax
import jax.numpy as jnp

from blindinv_jax.backend import STEP_COMPILER_OPTIONS
from blindinv_jax.models import layers

from timing import interleaved_medians, median_time

# (batch, H=W, C_in, C_out, kernel)
SHAPES = [(50, 28, 1, 16, 5), (50, 28, 16, 1, 5), (64, 28, 32, 16, 3),
          (64, 14, 64, 32, 3), (64, 7, 128, 64, 2)]
LOOP = 10


def autodiff(x, g, k, pad):
  w0 = jnp.zeros((k, k, x.shape[-1], g.shape[-1]), x.dtype)
  return jax.vjp(lambda w: layers._conv(x, w, pad), w0)[1](g)[0]


def canonical(x, g, k, pad):
  return layers._conv_weight_grad(x, g, pad)


def time_ms(fn, x, g, k, pad, loop: bool, repeats: int) -> float:
  shape = (k, k, x.shape[-1], g.shape[-1])
  if loop:
    run = jax.jit(lambda x, g: jax.lax.fori_loop(
        0, LOOP, lambda i, a: a + fn(x * (1 + i * 1e-3), g, k, pad),
        jnp.zeros(shape)), compiler_options=STEP_COMPILER_OPTIONS)
  else:
    run = jax.jit(lambda x, g: fn(x, g, k, pad),
                  compiler_options=STEP_COMPILER_OPTIONS)
  run(x, g).block_until_ready()
  t = median_time(lambda: run(x, g).block_until_ready(), repeats)
  return round(t / (LOOP if loop else 1) * 1e3, 2)


def train_steps_ms(thresholds, repeats):
  """Median ms of one prior training step per ``layers._THIN`` value."""
  from blindinv_jax.training import TrainConfig, gan
  cfg = TrainConfig(model="mnist28")
  real = jax.random.uniform(jax.random.key(0), (cfg.batch_size, 28, 28, 1),
                            minval=-1, maxval=1)
  default, runs = layers._THIN, {}
  try:
    for t in thresholds:
      layers._THIN = t                      # read when the step is traced
      gan._train_step.cache_clear()
      step = gan.make_train_step(cfg)
      state = gan.init_train_state(cfg)
      compiled = step.lower(state, real, jax.random.key(1)).compile()
      holder = {"s": state}

      def run(compiled=compiled, holder=holder):
        holder["s"], m = compiled(holder["s"], real, jax.random.key(1))
        jax.block_until_ready(m)
      runs[str(t)] = run
  finally:
    layers._THIN = default
    gan._train_step.cache_clear()
  return {t: round(s * 1e3, 1)
          for t, s in interleaved_medians(runs, repeats).items()}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--repeats", type=int, default=5)
  ap.add_argument("--out", default="docs/bench/wgrad.json")
  args = ap.parse_args(argv)
  rows = []
  for b, h, ci, co, k in SHAPES:
    x = jax.random.normal(jax.random.key(0), (b, h, h, ci))
    g = jax.random.normal(jax.random.key(1), (b, h, h, co))
    p = (k // 2, (k - 1) // 2)
    pad = (p, p)
    ref, new = autodiff(x, g, k, pad), canonical(x, g, k, pad)
    row = {"shape": f"[{b},{h},{h},{ci}] {k}x{k} {ci}->{co}",
           "max_rel_diff": float(jnp.abs(ref - new).max() / jnp.abs(ref).max())}
    for loop in (True, False):
      where = "fori_loop" if loop else "plain_jit"
      row[f"{where}_autodiff_ms"] = time_ms(autodiff, x, g, k, pad, loop,
                                            args.repeats)
      row[f"{where}_canonical_ms"] = time_ms(canonical, x, g, k, pad, loop,
                                             args.repeats)
    rows.append(row)
    print(row, flush=True)
  train = train_steps_ms((0, layers._THIN, 16), 3 * args.repeats)
  print("prior training step ms by layers._THIN:", train, flush=True)
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps({"devices": [str(d) for d in jax.devices()],
                             "loop_trips": LOOP, "rows": rows,
                             "train_step_ms_by_thin": train}, indent=1))
  print(f"wrote {out}")


if __name__ == "__main__":
  main()
