"""The PQ-evaluation benchmark script runs and writes its report (smoke test, not a timing)."""

import json


def test_benchmark_script_runs_and_writes_json(tmp_path, capsys):
    from benchmarks.pq_eval import main

    output = tmp_path / "pq_eval.json"
    assert main(["--num_images", "6", "--height", "48", "--width", "64", "--repeats", "1",
                 "--num_workers", "1", "--json", str(output)]) == 0
    report = json.loads(output.read_text())
    methods = {row["method"] for row in report["results"]}
    assert "PanopticQuality.update_state (in memory)" in methods
    assert all(row["images_per_second"] > 0 for row in report["results"])
    # The folder evaluator, the streaming metric and panopticapi agree on the same files.
    assert abs(report["streaming_minus_folder_pq"]) < 1e-9
    assert report["max_abs_difference_vs_panopticapi"] < 1e-9
    assert "images/s" in capsys.readouterr().out
