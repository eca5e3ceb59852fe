"""One process of the two-process tests (tests/test_distributed.py).

  python tests/distributed_worker.py PORT PROCESS_ID OUT_DIR MODE

Two simulated CPU devices per process; the tiny prior and observations are
the same on every process. MODE ``equal``: a solve (and PGD) over the global
mesh (each process bringing its rows) against the one-process run on all
rows;
``resume``: the sharded solve checkpointed in OUT_DIR/ckpt (run it again
after a kill to resume), its sources saved to OUT_DIR/sources_<i>.npy.
"""
import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

from blindinv_jax import distributed  # noqa: E402

port, pid, out, mode = (sys.argv[1], int(sys.argv[2]), sys.argv[3],
                        sys.argv[4])
distributed.initialize(f"localhost:{port}", 2, pid)

import jax  # noqa: E402
import numpy as np  # noqa: E402

from blindinv_jax import baselines, operators as ops, solver  # noqa: E402
from blindinv_jax.models import dcgan  # noqa: E402
from blindinv_jax.priors import GANPrior  # noqa: E402

assert jax.device_count() == 4 and jax.local_device_count() == 2
g, d = dcgan.init_variables_fn(dcgan.TINY, jax.random.key(0))
prior = GANPrior(g_vars=g, d_vars=d, config=dcgan.TINY, meta_json="{}")
x = prior.generate(prior.sample_latents(jax.random.key(5), 8))
y = np.asarray(ops.blur(x, ops.gaussian_kernel(3, 1.0)))
mesh = distributed.global_mesh()
rows = distributed.process_rows(len(y), mesh)
assert rows.stop - rows.start == 4, rows
try:
  distributed.process_rows(6, mesh)
except ValueError as e:
  assert "do not split evenly over the mesh's 4 'data' devices" in str(e)
else:
  raise AssertionError("6 rows on 4 devices were not refused")
cfg = solver.SolverConfig(outer_steps=int(os.environ.get("STEPS", 4)),
                          surrogate_steps=3, latent_steps=3, latent_lr=3e-2,
                          unroll=1, restarts=2)

if mode == "equal":
  for c in (cfg, cfg.replace(batch_size=4)):
    ref = solver.solve(y, prior, surrogate="conv", config=c)
    shd = solver.solve(y[rows], prior, surrogate="conv", config=c, mesh=mesh)
    np.testing.assert_allclose(shd.sources, ref.sources, atol=1e-4)
    np.testing.assert_allclose(
        np.asarray(shd.surrogate_params["params"]["conv1"]["kernel"]),
        np.asarray(ref.surrogate_params["params"]["conv1"]["kernel"]),
        atol=1e-4)
    # This process holds only its N/P rows of the latents and moments.
    assert distributed.local_block(shd.state.z).shape[1] == 4
    assert not shd.state.z.is_fully_addressable
  # ... and of the observations, placed as solve places them.
  y_global = distributed.global_rows(y[rows], mesh, 8)
  assert y_global.shape[0] == 8
  assert distributed.local_block(y_global).shape[0] == 4
  blur = lambda s: ops.blur(s[:, 0], ops.gaussian_kernel(3, 1.0))
  ref = baselines.pgd(y, prior, blur, config=cfg)
  shd = baselines.pgd(y[rows], prior, blur, config=cfg, mesh=mesh)
  np.testing.assert_allclose(shd[0], ref[0], atol=1e-4)
  auto = solver.solve(y[rows], prior, config=cfg, mesh=mesh)
  one = solver.solve(y, prior, config=cfg)
  assert auto.choice.family == one.choice.family, (auto.choice, one.choice)
  print(f"process {pid}: EQUAL-OK ({auto.choice.family})", flush=True)
else:
  res = solver.solve(y[rows], prior, surrogate="conv", config=cfg, mesh=mesh,
                     checkpoint_dir=os.path.join(out, "ckpt"),
                     checkpoint_every=1,
                     callback=lambda t, m: print(f"step {t}", flush=True))
  np.save(os.path.join(out, f"sources_{pid}.npy"), res.sources)
  print(f"process {pid}: RESUME-DONE", flush=True)
