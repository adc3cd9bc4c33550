"""The input-pipeline benchmark script runs and reports every stage (smoke test, not a timing)."""

import json

import pytest


@pytest.mark.slow
def test_benchmark_script_runs(tmp_path, capsys):
    from benchmarks.input_pipeline import main

    output = tmp_path / "result.json"
    assert main(["--crop", "65", "--batch_size", "2", "--num_images", "6", "--min_size", "64",
                 "--max_size", "96", "--batches", "2", "--json", str(output)]) == 0
    result = json.loads(output.read_text())
    assert set(result["stage_ms_per_image"]) == {
        "decode", "scale/crop/flip", "photometric", "targets", "batching"
    }
    assert result["images_per_second"] > 0
    assert "Dominant stage" in capsys.readouterr().out
