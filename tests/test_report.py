"""The results pages: the README block carries seg_jax vs MediaPipe and a link; results/README.md the current
tables (evaluations from eval/, benchmarks from bench/) and an index of the folder."""
import json

from seg_jax.evaluation import report


def test_front_door_has_peer_table_and_link(tmp_path):
    m = {"dice": 0.9, "iou": 0.8, "miou": 0.85, "mad": 0.05, "boundary_f": 0.7, "examples": 3}
    rows = [{"model": "mobilenet", "split": "test", "full_res": {"selfies": m}},
            {"model": "mediapipe general 256x256", "peer": True, "full_res": {"selfies": m}}]
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "eval-a.json").write_text(json.dumps({"results": rows}))
    (tmp_path / "eval" / "eval-b.json").write_text(json.dumps({"results": rows[:1]}))   # no peer: not on the front door
    (tmp_path / "eval" / "eval-a.md").write_text("full table a")
    (tmp_path / "eval-old.json").write_text(json.dumps({"results": rows}))    # outside eval/: not a current table
    text = report.front_door_section(tmp_path)
    assert f"]({tmp_path.as_posix()}/README.md)" in text
    assert "eval/eval-a.json" in text and "eval-b.json" not in text and "eval-old" not in text
    assert "| Source | mobilenet | mediapipe general 256x256 |" in text
    assert "| selfies (3) | 0.9000 | 0.9000 |" in text
    assert "full table a" in report.results_section(tmp_path, [])
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{report.START}\nold\n{report.END}\ntail\n")
    report.update_readme(readme, text)
    out = readme.read_text()
    assert "old" not in out and out.endswith("tail\n") and "mediapipe general" in out


def test_results_page_indexes_the_folder_and_takes_benchmarks_from_bench(tmp_path):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "README.md").write_text("# Speed and cost\n\nnot a table")
    (tmp_path / "bench" / "BENCH.md").write_text("# benchmarks\n\nlatency table")
    (tmp_path / "bench" / "cpu-load.md").write_text("# CPU load\n\ncpu table")
    (tmp_path / "HISTORY.md").write_text("intro\n\n## What was tried\n")
    (tmp_path / "archive").mkdir()                                             # no README: listed without a title
    (tmp_path / "README.md").write_text("# the page itself")
    text = report.results_section(tmp_path, [])
    assert "- [`HISTORY.md`](HISTORY.md): What was tried" in text
    assert "- [`bench/`](bench/): Speed and cost" in text and "- [`archive/`](archive/)\n" in text
    assert "the page itself" not in text and "not a table" not in text
    assert text.index("latency table") < text.index("cpu table")              # BENCH.md first


def test_front_door_shows_person_recall_where_scored():
    m = {"dice": 0.6, "examples": 4, "person_recall": 0.75, "person_recall_small": 0.5}
    rows = [{"model": "mobilenet", "full_res": {"camvid": m, "selfies": {"dice": 0.9, "examples": 3}}},
            {"model": "rvm", "peer": True, "full_res": {"camvid": {**m, "person_recall": 0.8}}}]
    lines = report.dice_summary(rows)
    assert "| camvid (4) | 0.6000, recall 0.750 (small 0.500) | 0.6000, recall 0.800 (small 0.500) |" in lines
    assert "| selfies (3) | 0.9000 | - |" in lines


def test_front_door_shows_flagged_frames_beside_recall_and_flagged_alone_on_person_free_photos():
    camvid = {"dice": 0.02, "examples": 43, "person_recall": 0.0, "false_person_images": 0.25}
    negatives = {"dice": 0.0, "examples": 296, "false_person_images": 0.605}
    lines = report.dice_summary([{"model": "mobilenet", "full_res": {"camvid": camvid, "negatives": negatives}}])
    assert "| camvid (43) | 0.0200, recall 0.000, 0.250 flagged |" in lines
    assert "| negatives (296) | 0.605 flagged |" in lines
