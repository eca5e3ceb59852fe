"""Wall-clock timing helpers of the benchmarks in this folder (imported by
``bench.py``, ``bench_wgrad.py`` and ``profile_step.py``, which run from
here), and the description of the machine every report names."""
import os
import platform
import statistics
import time

#: CPU features that decide which kernels the frameworks can use.
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def machine_info() -> dict:
  """The CPU model, its ISA features (AVX2 / AVX-512 / AMX), core count and
  the framework versions (torch's if it is installed)."""
  import jax
  import jaxlib
  model, flags = platform.processor() or "unknown", set()
  try:
    for line in open("/proc/cpuinfo"):
      if line.startswith("model name") and model in ("unknown", "x86_64"):
        model = line.split(":", 1)[1].strip()
      if line.startswith("flags"):
        flags = set(line.split(":", 1)[1].split())
        break
  except OSError:
    pass
  info = {"cpu": model, "isa": [f for f in ISA_FLAGS if f in flags],
          "cores": len(os.sched_getaffinity(0)) if hasattr(
              os, "sched_getaffinity") else os.cpu_count(),
          "jax": jax.__version__, "jaxlib": jaxlib.__version__,
          "backend": jax.default_backend(),
          "devices": [str(d) for d in jax.devices()]}
  try:
    import torch
    info["torch"] = torch.__version__
  except ImportError:
    pass
  return info


def machine_line(info: dict) -> str:
  """One line naming the machine, for the top of a report."""
  isa = ", ".join(info["isa"]) or "no AVX2"
  torch = f", torch {info['torch']}" if "torch" in info else ""
  return (f"{info['cpu']} ({isa}), {info['cores']} cores; jax "
          f"{info['jax']}{torch}; backend {info['backend']}")


def median_time(fn, repeats: int = 5) -> float:
  """Median wall seconds of ``fn()`` over ``repeats`` calls after one
  warm-up call (``fn`` must block until its result is ready)."""
  return interleaved_medians({"fn": fn}, repeats)["fn"]


def interleaved_medians(fns: dict, repeats: int) -> dict:
  """name -> median seconds of ``fns[name]()``, after one warm-up call each,
  the functions taking turns within every repeat (so drift in the machine's
  speed hits all of them alike)."""
  for fn in fns.values():
    fn()
  times = {k: [] for k in fns}
  for _ in range(repeats):
    for k, fn in fns.items():
      t0 = time.perf_counter()
      fn()
      times[k].append(time.perf_counter() - t0)
  return {k: statistics.median(v) for k, v in times.items()}
