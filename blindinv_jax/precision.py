"""The arithmetic the frozen prior networks run in (``SolverConfig.precision``).

Algorithm 1 spends almost all its time in the generator and discriminator,
forward and backward. :func:`lower_prior` wraps a prior so that only those
two networks change precision; latents, Adam states, the surrogate and every
loss stay float32, and the networks' outputs come back as float32.

``precision``:

* ``None``: the backend's default for float32 arrays: exact float32 on CPU,
  TensorFloat32 matrix products and convolutions on recent NVIDIA GPUs,
  bfloat16 passes on TPU. No wrapper: the solver runs as it always has.
* ``"float32"``: float32 arrays and exact float32 products everywhere
  (``jax.default_matmul_precision("float32")``).
* ``"tensorfloat32"``: float32 arrays, TF32 products where the hardware has
  them (an NVIDIA GPU from Ampere on; elsewhere the same as ``"float32"``).
* ``"bfloat16"``: the networks' variables and inputs cast to bfloat16, so
  every convolution, matrix product and activation runs in bfloat16;
  outputs (images ``[..., H, W, C]``, logits ``[...]``) cast back to float32.

The measured speed and quality of each, per machine, are in
``docs/speed.md#precision``.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Optional

import flax
import jax
import jax.numpy as jnp

#: precision -> (array dtype of G and D, jax.default_matmul_precision)
_MODES = {"float32": (jnp.float32, "float32"),
          "tensorfloat32": (jnp.float32, "tensorfloat32"),
          "bfloat16": (jnp.bfloat16, None)}
PRECISIONS = tuple(_MODES)


def check_precision(precision) -> Optional[str]:
  """``precision`` if it is None or one of :data:`PRECISIONS`, else a
  ValueError that names them."""
  if precision is None or precision in PRECISIONS:
    return precision
  raise ValueError(f"SolverConfig.precision must be None (the backend's "
                   f"default) or one of {PRECISIONS}, got {precision!r}.")


def _cast_floats(tree, dtype):
  return jax.tree_util.tree_map(
      lambda a: a.astype(dtype) if jnp.issubdtype(jnp.asarray(a).dtype,
                                                  jnp.floating) else a, tree)


class LoweredPrior(flax.struct.PyTreeNode):
  """A prior whose ``generate``/``discriminate`` run at ``precision``.

  ``inner``: the wrapped prior, its floating leaves already in the compute
  dtype (cast once, outside the solver's loops). Everything else
  (``latent_dim``, ``image_shape``, ``sample_latents``,
  ``project_latents``...) is the inner prior's.
  """
  inner: Any
  precision: str = flax.struct.field(pytree_node=False)

  def _run(self, fn, a: jax.Array) -> jax.Array:
    dtype, matmul = _MODES[self.precision]
    with jax.default_matmul_precision(matmul):
      return fn(a.astype(dtype)).astype(jnp.float32)

  def generate(self, z: jax.Array) -> jax.Array:
    """Latents ``[..., latent_dim]`` (float32) -> images ``[..., H, W, C]``
    (float32), computed at ``precision``."""
    return self._run(self.inner.generate, z)

  def discriminate(self, x: jax.Array) -> jax.Array:
    """Images ``[..., H, W, C]`` -> logits ``[...]`` (float32)."""
    return self._run(self.inner.discriminate, x)

  def __getattr__(self, name):
    if name.startswith("__") or name in ("inner", "precision"):
      raise AttributeError(name)
    return getattr(self.inner, name)


def lower_prior(prior, precision: Optional[str]):
  """``prior`` with its networks at ``precision`` (None: ``prior`` itself).

  Call inside the jitted step, so that the cast of the variables is part of
  the compiled program and runs once per step, outside the inner loops.
  """
  precision = check_precision(precision)
  if precision is None:
    return prior
  if isinstance(prior, LoweredPrior):
    prior = prior.inner
  return LoweredPrior(inner=_cast_floats(prior, _MODES[precision][0]),
                      precision=precision)


@functools.lru_cache(maxsize=1)
def cpu_bf16_features() -> tuple:
  """The bfloat16 arithmetic this CPU advertises (``/proc/cpuinfo`` flags
  among ``avx512_bf16``, ``amx_bf16``; ``()`` when none or unknown)."""
  try:
    with open("/proc/cpuinfo") as f:
      flags = re.search(r"^flags\s*:(.*)$", f.read(), re.M)
  except OSError:
    return ()
  have = set(flags.group(1).split()) if flags else set()
  return tuple(f for f in ("avx512_bf16", "amx_bf16") if f in have)
