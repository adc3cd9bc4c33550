"""README.md stays true: every Python snippet runs, every command names a real module and file.

Each ```python block runs in a fresh subprocess whose working folder is a temporary folder and
whose `PYTHONPATH` starts with the repository root, so a snippet must be self-contained and
must not depend on the repository's own files. A block can be tagged by an HTML comment on the
line before its fence:

- `<!-- readme-test: slow -->`: run by the slow test instead of the fast one;
- `<!-- readme-test: slow, run -->` on a ```bash block: the slow test runs it (with this
  Python first on `PATH`) before the slow Python blocks that follow it, in the same folder;
- `no-keras-axial`: after the block runs, `keras_axial` must not have been imported (the README
  says exported models load without keras-axial).

Other ```bash blocks are not executed; instead every `python -m MODULE` they name must be a
runnable module and every `gin/...gin` path the README names must exist.
"""

import dataclasses
import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"

_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_TAG = re.compile(r"<!--\s*readme-test:\s*(.*?)\s*-->")
_KNOWN_TAGS = {"slow", "run", "no-keras-axial"}
_PYTHON_MODULE = re.compile(r"\bpython3? -m ([A-Za-z_][\w.]*)")
_GIN_PATH = re.compile(r"\bgin/[\w./*-]*\.gin\b")

# Runs one snippet file as __main__, then checks what it imported.
_RUNNER = """
import runpy, sys
path, forbid_keras_axial = sys.argv[1], sys.argv[2] == "1"
runpy.run_path(path, run_name="__main__")
if forbid_keras_axial:
    imported = sorted(name for name in sys.modules if name.split(".")[0] == "keras_axial")
    if imported:
        sys.exit(f"README snippet {path} imported keras_axial ({imported[:5]}), which it "
                 "claims not to need.")
"""


@dataclasses.dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int  # 1-based line of the opening fence
    tags: frozenset

    @property
    def name(self):
        return f"{self.language}-block-at-line-{self.line}"


def read_blocks(text):
    """The fenced code blocks of a Markdown text, with the tags of the comment just before."""
    blocks = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        tag = _TAG.search(before)
        tags = frozenset(t.strip() for t in tag.group(1).split(",")) if tag else frozenset()
        unknown = tags - _KNOWN_TAGS
        if unknown:
            raise ValueError(f"README.md line {line}: unknown readme-test tags {sorted(unknown)}")
        blocks.append(Block(match.group(1).lower(), match.group(2), line, tags))
    return blocks


BLOCKS = read_blocks(README.read_text(encoding="utf-8"))
PYTHON_BLOCKS = [block for block in BLOCKS if block.language == "python"]
FAST_PYTHON_BLOCKS = [block for block in PYTHON_BLOCKS if "slow" not in block.tags]
SLOW_BLOCKS = [
    block
    for block in BLOCKS
    if "slow" in block.tags and (block.language == "python" or "run" in block.tags)
]
BASH_BLOCKS = [block for block in BLOCKS if block.language in ("bash", "sh", "shell")]


def _environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    # `python` in a README command is this interpreter.
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["MPLBACKEND"] = "Agg"
    return env


def _run_block(block, folder, timeout):
    if block.language == "python":
        path = folder / f"readme_line_{block.line}.py"
        path.write_text(block.code, encoding="utf-8")
        command = [
            sys.executable, "-c", _RUNNER, str(path), "1" if "no-keras-axial" in block.tags else "0"
        ]
    else:
        command = ["bash", "-euo", "pipefail", "-c", block.code]
    result = subprocess.run(
        command, cwd=folder, env=_environment(), capture_output=True, text=True, timeout=timeout
    )
    output = (result.stdout + result.stderr)[-6000:]
    assert result.returncode == 0, (
        f"README.md {block.language} block at line {block.line} failed "
        f"(exit {result.returncode}):\n{block.code}\n--- output ---\n{output}"
    )
    return result


def test_readme_has_the_snippets_the_issue_asks_for():
    assert FAST_PYTHON_BLOCKS, "README.md has no Python snippet run by the fast test"
    quick_start = FAST_PYTHON_BLOCKS[0].code
    for call in ("get_model(", "model(", "save_png("):
        assert call in quick_start, f"the first Python snippet (quick start) lacks {call!r}"
    for block in BLOCKS:
        if "run" in block.tags:
            assert "slow" in block.tags and block.language in ("bash", "sh", "shell"), (
                f"README.md line {block.line}: only slow bash blocks can be tagged 'run'"
            )


def test_read_blocks_parses_fences_and_tags():
    text = (
        "intro\n<!-- readme-test: slow, no-keras-axial -->\n```python\nprint(1)\n```\n"
        "```bash title\npython -m x.y\n```\n"
    )
    first, second = read_blocks(text)
    assert (first.language, first.code, first.line) == ("python", "print(1)\n", 3)
    assert first.tags == {"slow", "no-keras-axial"}
    assert (second.language, second.code, second.tags) == ("bash", "python -m x.y\n", frozenset())
    with pytest.raises(ValueError, match="unknown readme-test tags"):
        read_blocks("<!-- readme-test: fast -->\n```python\npass\n```\n")


@pytest.mark.parametrize("block", FAST_PYTHON_BLOCKS, ids=lambda block: block.name)
def test_python_snippet_runs(block, tmp_path):
    _run_block(block, tmp_path, timeout=600)


@pytest.mark.slow
def test_slow_snippets_run_in_order(tmp_path):
    assert SLOW_BLOCKS, "README.md has no slow snippet"
    for block in SLOW_BLOCKS:
        _run_block(block, tmp_path, timeout=1200)


def test_snippet_runner_catches_failures_and_forbidden_imports(tmp_path):
    failing = Block("python", "raise SystemExit(3)\n", 1, frozenset())
    with pytest.raises(AssertionError, match="exit 3"):
        _run_block(failing, tmp_path, timeout=60)
    importing = Block("python", "import keras_axial\n", 2, frozenset({"no-keras-axial"}))
    with pytest.raises(AssertionError, match="imported keras_axial"):
        _run_block(importing, tmp_path, timeout=60)


def test_python_m_commands_name_runnable_modules(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    modules = sorted({m for block in BASH_BLOCKS for m in _PYTHON_MODULE.findall(block.code)})
    assert "keras_axial.train" in modules and "export.saved_model" in modules
    for module in modules:
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"README.md runs `python -m {module}`, which does not exist"
        if spec.submodule_search_locations is not None:
            assert importlib.util.find_spec(f"{module}.__main__") is not None, (
                f"README.md runs `python -m {module}`, a package without __main__"
            )


def test_gin_paths_exist():
    paths = sorted(set(_GIN_PATH.findall(README.read_text(encoding="utf-8"))))
    assert "gin/experiments/synthetic_tiny.gin" in paths
    missing = []
    for path in paths:
        if any(char in path for char in "*?["):
            if not list(REPO_ROOT.glob(path)):
                missing.append(path)
        elif not (REPO_ROOT / path).is_file():
            missing.append(path)
    assert not missing, f"README.md names gin files that do not exist: {missing}"


def _gin_macro(path, name):
    values = re.findall(rf"^{name}\s*=\s*(\d+)\s*$", path.read_text(encoding="utf-8"), re.M)
    assert len(values) == 1, f"{path} should set {name} once; found {values}"
    return int(values[0])


def test_recipe_table_batch_and_steps_match_the_gin_files():
    rows = re.findall(
        r"^\| `(gin/experiments/[\w]+\.gin)` \|.*?\| ([\d,]+) x ([\d,]+)[^|]*\|",
        README.read_text(encoding="utf-8"),
        re.M,
    )
    experiments = sorted(
        path.relative_to(REPO_ROOT).as_posix()
        for path in (REPO_ROOT / "gin" / "experiments").glob("*.gin")
    )
    assert sorted(path for path, _, _ in rows) == experiments, "one recipe row per experiment"
    for path, batch, steps in rows:
        gin_file = REPO_ROOT / path
        assert (int(batch.replace(",", "")), int(steps.replace(",", ""))) == (
            _gin_macro(gin_file, "GLOBAL_BATCH_SIZE"),
            _gin_macro(gin_file, "TRAIN_STEPS"),
        ), f"README.md's recipe row for {path} disagrees with the file"


def test_every_experiment_and_registered_model_is_in_the_readme():
    from keras_axial.models import list_models

    text = README.read_text(encoding="utf-8")
    experiments = sorted(
        path.relative_to(REPO_ROOT).as_posix()
        for path in (REPO_ROOT / "gin" / "experiments").glob("*.gin")
    )
    assert experiments
    for path in experiments:
        assert f"`{path}`" in text, f"README.md's recipe table lacks {path}"
    for name in list_models():
        assert f"`{name}`" in text, f"README.md's model zoo lacks the registered model {name}"
