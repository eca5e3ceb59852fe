"""blindinv-jax: blind inverse problems with generative priors, in JAX.

Submodules are imported lazily so that ``import blindinv_jax`` stays cheap:
``from blindinv_jax import solver, operators`` loads only what is asked for.
The layers, upstream first (``docs/design.md``): data, operators ->
models, priors -> config, backend, algorithm, minibatch -> runner -> latent,
auto -> solver (parallel, resume, validation), project, baselines, refine,
training -> metrics, viz, methods, experiment, demo, cli.
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "algorithm", "auto", "backend", "baselines", "checkpoint", "classifier",
    "cli", "config", "data", "demo", "experiment", "latent", "methods",
    "metrics", "minibatch", "models", "operators", "options", "parallel",
    "precision", "priors", "project", "refine", "report", "resume", "runner",
    "solver", "training", "utils", "validation", "viz")


def __getattr__(name):
  if name in _SUBMODULES:
    return importlib.import_module(f"{__name__}.{name}")
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
  return sorted((*globals(), *_SUBMODULES))
