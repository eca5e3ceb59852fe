"""blindinv-jax: blind inverse problems with GAN priors, in JAX.

Submodules are imported lazily so that ``import blindinv_jax`` stays cheap:
``from blindinv_jax import data, prior`` loads only what is asked for.
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = ("data", "prior", "metrics", "viz", "checkpoint", "models")


def __getattr__(name):
  if name in _SUBMODULES:
    return importlib.import_module(f"{__name__}.{name}")
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
