import pytest

from keras_axial.utils import atomic_directory, atomic_write


def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target, "w") as handle:
            handle.write("partial")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    with atomic_write(target, "w") as handle:
        handle.write("new")
    assert target.read_text() == "new"


def test_atomic_write_names_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        with atomic_write(tmp_path / "missing" / "x.bin"):
            pass


def test_atomic_directory(tmp_path):
    target = tmp_path / "export"
    with atomic_directory(target) as work:
        (work / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"
    with pytest.raises(ValueError):
        with atomic_directory(target) as work:
            (work / "b.txt").write_text("2")
            raise ValueError("fail")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]


def test_file_helpers_do_not_import_keras():
    import subprocess
    import sys

    code = ("import sys, keras_axial.utils; "
            "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules, "
            "sorted(m for m in sys.modules if m.startswith(('keras', 'tensorflow')))")
    subprocess.run([sys.executable, "-c", code], check=True)
