"""docs/api.md's notebook example runs as written, and its vmapped solves
equal the solves one at a time."""
import pathlib
import re

import jax
import numpy as np

DOC = pathlib.Path(__file__).parent.parent / "docs" / "api.md"


def test_the_api_example_runs_and_vmap_equals_one_at_a_time(capsys):
  code = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
  assert len(code) == 1
  ns = {}
  exec(compile(code[0], str(DOC), "exec"), ns)
  out = capsys.readouterr().out
  assert "(4, 1, 28, 28, 1)" in out and "(2, 4, 1, 28, 28, 1)" in out
  alg, prior, module, cfg, y, ys = (ns[k] for k in (
      "algorithm", "prior", "module", "cfg", "y", "ys"))
  assert ns["srcs"].shape == (2,) + tuple(ns["sources"].shape)
  # The second vmapped set, solved on its own from its own key, agrees.
  key = ns["keys"][1]
  state = alg.init_state(key, ys[1], prior, module, cfg, 1)
  step = jax.jit(alg.outer_step, static_argnames=("surrogate", "config"))
  for _ in range(cfg.outer_steps):
    state, _ = step(state, ys[1], prior, module, cfg)
  one = alg.final_estimates(state, ys[1], prior, module)[0]
  np.testing.assert_allclose(ns["srcs"][1], one, atol=2e-4)
  assert np.all(np.isfinite(ns["m"]["latent_loss"]))
