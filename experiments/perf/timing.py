"""Wall-clock timing helpers of the benchmarks in this folder (imported by
``bench.py``, ``bench_wgrad.py`` and ``profile_step.py``, which run from
here)."""
import statistics
import time


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
