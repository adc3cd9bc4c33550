"""The Colab notebooks in notebooks/: their structure (fast) and a top-to-bottom run (slow).

The slow tests execute each notebook in a Jupyter kernel of this test's own Python (the
repository's virtual environment) with `KERAS_AXIAL_NOTEBOOK_TINY=1`, the notebooks' switch to
tiny settings, from the `notebooks/` folder, as a user would run them.
"""

import ast
import copy
import os
import pathlib
import sys
import time

import pytest

NOTEBOOK_DIR = pathlib.Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = (
    "01_quickstart.ipynb",
    "02_train_synthetic.ipynb",
    "03_export_savedmodel_tflite.ipynb",
    "04_custom_dataset.ipynb",
)
TINY_LINE = 'TINY = os.environ.get("KERAS_AXIAL_NOTEBOOK_TINY") == "1"'
INSTALL_GUARD = 'if importlib.util.find_spec("keras_axial") is None:'
# Generous: each notebook takes well under 2 minutes under TINY on 2 CPU cores.
CELL_TIMEOUT_S = 600


def _read(name):
    import nbformat

    return nbformat.read(NOTEBOOK_DIR / name, as_version=4)


def _code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_notebook_folder_holds_exactly_the_tested_notebooks():
    assert sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_structure(name, monkeypatch):
    import subprocess

    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager

    notebook = _read(name)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    assert notebook.cells[0].cell_type == "markdown"
    assert notebook.cells[0].source.startswith("# "), "the first cell is the title"

    cells = _code_cells(notebook)
    for index, cell in enumerate(cells):
        where = f"{name}, code cell {index}"
        assert cell.outputs == [], f"{where} has stored outputs: clear them before committing"
        assert cell.execution_count is None, f"{where} has an execution count"
        ast.parse(TransformerManager().transform_cell(cell.source), filename=where)

    # The first code cell installs keras-axial only where it is missing (Colab): run here,
    # where it is installed, it must not call pip.
    install = cells[0].source
    assert INSTALL_GUARD in install and '"pip", "install"' in install
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append(args))
    exec(compile(install, f"{name} install cell", "exec"), {})
    assert calls == [], f"the install cell of {name} ran pip although keras_axial is installed"

    # The size switch is read once, in the second code cell, before any work.
    assert TINY_LINE in cells[1].source
    readers = [i for i, cell in enumerate(cells) if "KERAS_AXIAL_NOTEBOOK_TINY" in cell.source]
    assert readers == [1], f"KERAS_AXIAL_NOTEBOOK_TINY is read in code cells {readers}"


def _kernel_environment(tmp_path):
    env = dict(os.environ)
    env["KERAS_AXIAL_NOTEBOOK_TINY"] = "1"
    # Whatever the notebooks write to temporary folders lands in the test's folder.
    env["TMPDIR"] = str(tmp_path)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_top_to_bottom(name, tmp_path):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = _read(name)
    executed = copy.deepcopy(notebook)
    # Prove the kernel is this test's Python: jupyter_client replaces the `python` of the
    # python3 kernel spec with sys.executable, a spec found elsewhere would not.
    executed.cells.insert(0, nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)"))
    before = sorted(p.relative_to(NOTEBOOK_DIR) for p in NOTEBOOK_DIR.rglob("*"))
    client = NotebookClient(
        executed,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    start = time.perf_counter()
    try:
        client.execute(env=_kernel_environment(tmp_path))
    except CellExecutionError as error:
        pytest.fail(f"{name} failed:\n{error}", pytrace=False)
    finally:
        seconds = time.perf_counter() - start
        nbformat.write(executed, tmp_path / name)
        print(f"{name}: executed in {seconds:.1f} s; with outputs: {tmp_path / name}")

    kernel_prefix = "".join(executed.cells[0].outputs[0]["text"]).strip()
    assert kernel_prefix == sys.prefix, f"the kernel ran in {kernel_prefix}, not {sys.prefix}"
    cells = _code_cells(executed)[1:]
    assert all(cell.execution_count for cell in cells), "a code cell did not run"
    displayed = [output.get("data", {}) for cell in cells for output in cell.outputs]
    assert any("image/png" in data for data in displayed), f"{name} displayed no figure"
    # A figure shown as "<Figure size ...>" text: the inline backend was not set up in time.
    unrendered = [data["text/plain"] for data in displayed
                  if "image/png" not in data and data.get("text/plain", "").startswith("<Figure")]
    assert not unrendered, f"{name} displayed figures as text: {unrendered}"
    after = sorted(p.relative_to(NOTEBOOK_DIR) for p in NOTEBOOK_DIR.rglob("*"))
    assert after == before, f"{name} left files in notebooks/: {sorted(set(after) - set(before))}"
