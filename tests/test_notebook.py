"""Executes examples/quickstart.ipynb top to bottom (slow: a few minutes)."""
import pathlib

import pytest

NOTEBOOK = pathlib.Path(__file__).parent.parent / "examples" / "quickstart.ipynb"


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path):
  nbformat = pytest.importorskip("nbformat")
  nbclient = pytest.importorskip("nbclient")
  nb = nbformat.read(NOTEBOOK, as_version=4)
  client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                   resources={"metadata": {"path": str(tmp_path)}})
  client.execute()
  outputs = "\n".join(
      o.get("text", "") for c in nb.cells if c.cell_type == "code"
      for o in c.get("outputs", []) if o.get("output_type") == "stream")
  assert "recovered PSNR" in outputs and "'error'" in outputs
  # Every figure cell produced an image.
  images = sum("image/png" in o.get("data", {}) for c in nb.cells
               if c.cell_type == "code" for o in c.get("outputs", []))
  assert images >= 4
