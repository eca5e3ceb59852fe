"""Writes examples/quickstart.ipynb from the cells below (run from the repo root:
``python examples/make_quickstart.py``); edit here, not in the .ipynb."""
import nbformat as nbf

nb = nbf.v4.new_notebook()
md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
nb.cells = [
md("""# blindinv-jax quickstart: blind deblurring in a few minutes on a CPU

We observe blurred digits `y = F(x)` and do **not** know the blur `F`. With only `y` and a GAN
prior of clean digits, Algorithm 1 of the paper recovers the digits and a surrogate of `F` at once.

Everything below is a pure function of arrays and PRNG keys: same key, same result."""),
code("""import time
import jax
import jax.numpy as jnp
import numpy as np
import matplotlib.pyplot as plt

from blindinv_jax import data, metrics, operators as ops, solver
from blindinv_jax.models.surrogates import effective_kernel
from blindinv_jax.priors import load_prior

print(jax.devices())"""),
md("""## 1. The prior

`load_prior("mnist")` loads the DCGAN prior shipped with the package (trained by `blindinv train-prior`
on the mnist5k train split). `prior.generate(z)` maps latents in `[-1, 1]^100` to 28x28 digits in `[-1, 1]`."""),
code("""prior = load_prior("mnist")
print(prior.config.name, prior.image_shape, "latent", prior.latent_dim)
samples = prior.generate(prior.sample_latents(jax.random.key(0), 16))

def show_rows(rows, labels, title=""):
  fig, axes = plt.subplots(len(rows), len(rows[0]), figsize=(len(rows[0]), 1.1 * len(rows)), squeeze=False)
  for i, (row, label) in enumerate(zip(rows, labels)):
    for j, im in enumerate(row):
      axes[i, j].imshow(np.asarray(im)[..., 0], cmap="gray", vmin=-1, vmax=1)
      axes[i, j].set_xticks([]); axes[i, j].set_yticks([])
    axes[i, 0].set_ylabel(label, rotation=0, ha="right", va="center")
  fig.suptitle(title)
  plt.show()

show_rows([samples[:8], samples[8:]], ["samples", ""], "G(z) for random z")"""),
md("""## 2. Simulate observations

Eight held-out test digits (never seen by the prior), blurred by a 9x9 Gaussian of sigma 2 as a camera blurs
(the scene continues past the frame; the `conv_scene` surrogate below pads the same way). The solver only
ever sees `y`; `k_true` is kept to score the result."""),
code("""x = jnp.asarray(data.load_images("mnist5k", "test", limit=8))   # [N, 28, 28, 1]
k_true = ops.gaussian_kernel(9, 2.0)
y = ops.blur(x, k_true)                                          # [N, 28, 28, 1]
print("observation PSNR %.2f dB" % float(metrics.psnr(y, x).mean()))"""),
md("""## 3. Solve blindly

`solver.FAST` is the schedule tuned on the validation split (`solver.PAPER` is the paper's). `solve` runs the
outer steps of Algorithm 1: each one is a single jitted program with the T1 surrogate steps and the T2 latent
steps inside. The callback sees the losses after every outer step."""),
code("""config = solver.FAST
print(config)
losses = []
t0 = time.perf_counter()
res = solver.solve(y, prior, num_sources=1, surrogate="conv_scene", config=config,
                   key=jax.random.key(0),
                   callback=lambda step, m: losses.append(float(m["latent_loss"].min())))
recovered = res.sources[:, 0]
print("solved in %.0f s" % (time.perf_counter() - t0))
print("recovered PSNR %.2f dB (observation %.2f dB)" % (
    float(metrics.psnr(recovered, x).mean()), float(metrics.psnr(y, x).mean())))
print("recovered SSIM %.3f (observation %.3f)" % (
    float(metrics.ssim(recovered, x).mean()), float(metrics.ssim(y, x).mean())))"""),
code("""show_rows([y, res.reconstruction, recovered, x],
          ["observed", "F_hat(G(z*))", "recovered", "original"], "Blind deblurring")
plt.figure(figsize=(4, 2.5))
plt.semilogy(np.arange(1, len(losses) + 1), losses)
plt.xlabel("outer step"); plt.ylabel("mean |F_hat(G(z)) - y|"); plt.show()"""),
md("""## 4. Read the estimated blur

The surrogate is two linear 5x5 convolutions; `effective_kernel` composes them into one 9x9 kernel. It is only
defined up to a shift and a scale (the sources absorb them), so `metrics.kernel_error` compares after the best
shift and scale."""),
code("""k_est = np.asarray(effective_kernel(res.surrogate_params))[:, :, 0, 0]
err = metrics.kernel_error(k_est, np.asarray(k_true))
print(err)
fig, axes = plt.subplots(1, 2, figsize=(5, 2.5))
for ax, k, t in zip(axes, [k_true, k_est], ["true", "estimated"]):
  ax.imshow(np.asarray(k), cmap="RdBu_r", vmin=-abs(k).max(), vmax=abs(k).max()); ax.set_title(t); ax.axis("off")
plt.show()"""),
md("""## 5. The pure-function path

`solve` runs pure functions of `blindinv_jax.algorithm` through the runner. The pieces are public
(`docs/api.md`): `init_state` builds the `SolverState` pytree (latents `[R, N, S, latent_dim]`, surrogate
parameters, both Adam states, step, key), `outer_step` is one outer step `state -> (state, metrics)`, and
`final_estimates` picks the best restart. Jit them with the surrogate and the config as static arguments;
nothing retraces after the first call. `m["finite"]` is False if a loss or the state went NaN/Inf, in which
case the step was not taken."""),
code("""from blindinv_jax import algorithm
from blindinv_jax.models.surrogates import make_surrogate
module = make_surrogate("conv_scene", out_channels=1)
cfg = config.replace(outer_steps=3)
init = jax.jit(algorithm.init_state, static_argnames=("surrogate", "config", "num_sources"))
step = jax.jit(algorithm.outer_step, static_argnames=("surrogate", "config"))
state = init(jax.random.key(1), y, prior, module, cfg, 1)
print(jax.tree_util.tree_map(jnp.shape, state.z), int(state.step))
for _ in range(cfg.outer_steps):
  state, m = step(state, y, prior, module, cfg)
  losses_r0 = {k: round(float(v[0]), 4) for k, v in m.items() if k != "finite"}
  print(int(state.step), "finite" if bool(m["finite"]) else "NOT finite", losses_r0)
sources, z, params, y_hat, best = algorithm.final_estimates(state, y, prior, module)
print(sources.shape, z.shape, y_hat.shape)"""),
]
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nbf.write(nb, "examples/quickstart.ipynb")
