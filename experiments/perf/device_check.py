"""The device check: the first and only command to run on a GPU machine.

  python experiments/perf/device_check.py --out "$OUT"          # on a GPU
  python experiments/perf/device_check.py --tiny --out /tmp/dc  # the same steps on the CPU, tiny

Standing rule: any time a GPU machine is available (``device`` tool,
DEVELOPERS.md), run this first and commit its report as ``docs/bench/gpu.md``.
The GPU machines come with JAX (CUDA), PyTorch, Flax, Optax, chex,
scikit-learn, tqdm and matplotlib; carry the rest of ``requirements.txt``
that is missing there (mlxtend, dm-pix, pillow...) as wheels built here with
``pip download --no-deps -d .whl mlxtend dm-pix`` and install them there with
``pip install --no-deps .whl/*.whl && pip install --no-deps -e .``.

Steps, each with its own time limit, each writing into ``--out``:

1. ``env.json``: devices, JAX/PyTorch versions, the CPU, ``nvidia-smi``;
2. ``tests.txt``: the tests of the solver, the layers' custom gradients,
   sharding and minibatch mode, run on the device;
3. ``demo/``: ``blindinv demo`` (its PSNR and wall time);
4. ``bench/``: ``bench.py`` at N = 50, 200, 1000, 5000 (JAX default and
   unrolled against PyTorch eager and ``torch.compile``, same weights),
   with compile times, FLOP rate against the measured matmul ceiling and
   peak memory, in float32;
5. ``precision/``: ``bench.py --precision float32,tensorfloat32,bfloat16``
   at N = 50 and 1000 (JAX default against PyTorch eager, each precision on
   both sides);
6. ``report.md``: all of it, to commit as ``docs/bench/gpu.md``.

The steps' time limits (120 + 75 + 180 + 90 s) keep the whole check under
8 minutes on one GPU, so a second try fits a 15-minute budget.

``--tiny`` runs every step at tiny sizes (one test of the layers'
gradients, a 2-digit demo of one outer step, a 2+2-step benchmark at N = 1
without PyTorch), so that the
script is tested in CI (``tests/test_device_check.py``) and does not rot.
"""
import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TESTS = ["tests/test_solver.py", "tests/test_scale.py",
         "tests/test_dcgan.py::test_layers_conv_equals_flax_conv_with_gradients",
         "tests/test_dcgan.py::test_canonical_weight_gradient_equals_autodiff",
         "tests/test_dcgan.py::test_phase_conv_transpose_equals_flax_conv_transpose"]
TINY_TESTS = ["tests/test_dcgan.py::test_canonical_weight_gradient_equals_autodiff"]


def run(cmd, log, timeout):
  """Runs ``cmd`` from the repository root; ``(returncode, seconds)``."""
  t0 = time.time()
  try:
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                       timeout=timeout)
    log.write_text(p.stdout + p.stderr)
    rc = p.returncode
  except subprocess.TimeoutExpired as e:
    log.write_text(f"timed out after {timeout} s\n{e.stdout or ''}")
    rc = "timeout"
  return rc, round(time.time() - t0, 1)


def environment() -> dict:
  sys.path.insert(0, str(HERE))
  from timing import machine_info
  env = machine_info()
  env["python"] = sys.version.split()[0]
  if shutil.which("nvidia-smi"):
    env["nvidia_smi"] = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
         "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
  return env


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--out", default=os.environ.get("OUT", "runs/device_check"))
  ap.add_argument("--tiny", action="store_true",
                  help="every step at tiny sizes (CPU, CI)")
  args = ap.parse_args(argv)
  out = pathlib.Path(args.out).resolve()
  out.mkdir(parents=True, exist_ok=True)
  py = sys.executable
  env = environment()
  (out / "env.json").write_text(json.dumps(env, indent=1))
  steps = {}
  tests = TINY_TESTS if args.tiny else TESTS
  steps["tests"] = run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-m", "not slow", *tests], out / "tests.txt",
                       300 if args.tiny else 120)
  demo = ["--n", "2", "--outer-steps", "1"] if args.tiny else []
  steps["demo"] = run([py, "-m", "blindinv_jax.cli", "demo", "--out",
                       str(out / "demo"), "--overwrite", *demo],
                      out / "demo.txt", 300 if args.tiny else 75)
  bench = (["--n", "1", "--repeats", "1", "--inner-steps", "2", "--no-torch",
            "--variants", "default"] if args.tiny else
           ["--n", "50,200,1000,5000", "--repeats", "3", "--variants",
            "default,unrolled,torch_eager,torch_compile"])
  steps["bench"] = run([py, str(HERE / "bench.py"), *bench, "--out",
                        str(out / "bench")], out / "bench.txt",
                       300 if args.tiny else 180)
  prec = (["--n", "1", "--repeats", "1", "--inner-steps", "2", "--no-torch",
           "--variants", "default", "--precision", "float32,bfloat16"]
          if args.tiny else
          ["--n", "50,1000", "--repeats", "3", "--variants",
           "default,torch_eager", "--precision",
           "float32,tensorfloat32,bfloat16"])
  steps["precision"] = run([py, str(HERE / "bench.py"), *prec, "--out",
                            str(out / "precision")], out / "precision.txt",
                           300 if args.tiny else 90)
  report(out, env, steps, args.tiny)
  return steps


def report(out, env, steps, tiny: bool):
  """``report.md`` from the steps' outputs."""
  sys.path.insert(0, str(HERE))
  from timing import machine_line
  lines = [f"# Device check{' (tiny, CPU)' if tiny else ''}", "",
           f"Command: `python experiments/perf/device_check.py"
           f"{' --tiny' if tiny else ''}`.", "",
           f"Machine: {machine_line(env)}.",
           f"Devices: {', '.join(env['devices'])}."]
  if "nvidia_smi" in env:
    lines.append(f"GPU: {env['nvidia_smi']}.")
  lines += ["", "| step | result | seconds |", "|---|---|---|"]
  tail = (out / "tests.txt").read_text().strip().splitlines()
  lines.append(f"| tests | {tail[-1] if tail else '?'} (rc "
               f"{steps['tests'][0]}) | {steps['tests'][1]} |")
  metrics = out / "demo" / "metrics.json"
  if metrics.exists():
    m = json.loads(metrics.read_text())
    lines.append(f"| demo | observation {m['psnr_observation'][0]:.2f} dB -> "
                 f"recovered {m['psnr_recovered'][0]:.2f} dB, solve "
                 f"{m['seconds']} s | {steps['demo'][1]} |")
  else:
    lines.append(f"| demo | failed (rc {steps['demo'][0]}, demo.txt) | "
                 f"{steps['demo'][1]} |")
  bench_md = out / "bench" / "bench.md"
  lines.append(f"| bench | rc {steps['bench'][0]} | {steps['bench'][1]} |")
  prec_md = out / "precision" / "bench.md"
  lines.append(f"| precision | rc {steps['precision'][0]} | "
               f"{steps['precision'][1]} |")
  if bench_md.exists():
    lines += ["", "## Benchmark", "", bench_md.read_text()]
  if prec_md.exists():
    lines += ["", "## Precision", "", prec_md.read_text()]
  (out / "report.md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
