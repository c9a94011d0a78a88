"""The model card generator: runs on a tiny fake manifest and evaluation, and reports what it was given."""
from __future__ import annotations

import json

from seg_jax.evaluation import model_card


def _fake(tmp_path, peer_split="test"):
    weights = tmp_path / "weights" / "tiny"
    weights.mkdir(parents=True)
    (weights / "manifest.json").write_text(json.dumps({
        "model": {"name": "mobilenet"}, "parameters": 1234, "sha256": "ab" * 32, "size_bytes": 4936,
        "input_size": [128, 128], "training": {"steps": 7, "examples_seen": 56, "commands": ["python -m train x"]},
        "data": {"source": "mixed", "weights": {"composite": 1.0}}}))
    rows = [{"model": "mobilenet", "split": "test", "input_size": [128, 128],
             "full_res": {"portraits": {"dice": 0.91234, "iou": 0.8, "boundary_f": 0.5, "mad": 0.1, "examples": 3},
                          "davis": {"dice": 0.5, "iou": 0.4, "boundary_f": 0.3, "mad": 0.2, "examples": 2}}},
            {"model": "mediapipe general", "peer": True, "split": peer_split,
             "full_res": {"portraits": {"dice": 0.95678, "iou": 0.9}, "davis": {"dice": 0.7, "iou": 0.6}}}]
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(json.dumps({"results": rows}))
    return weights, evaluation


def test_card_from_fake_manifest_and_eval(tmp_path):
    weights, evaluation = _fake(tmp_path)
    assert model_card.main(["--weights", str(weights), "--eval", str(evaluation)]) == 0
    card = (weights / "MODEL_CARD.md").read_text()
    assert "Parameters: 1,234" in card and "U-Net MobileNet" in card and "7 steps" in card
    row = next(line for line in card.splitlines() if line.startswith("| portraits (3)"))
    assert "0.912" in row and "0.957" in row  # the model's Dice beside MediaPipe's, same row
    for needle in ("CC BY-NC 4.0", "research use", "Small people far from the camera", "Groups", "Low light",
                   "## Licence", "## Intended use"):
        assert needle in card, needle


def test_card_keeps_other_split_peers_apart_and_bad_input(tmp_path, capsys):
    weights, evaluation = _fake(tmp_path)
    own = json.loads(evaluation.read_text())
    own["results"][0]["split"] = "val"
    peers = tmp_path / "peers.json"
    peers.write_text(json.dumps({"results": own["results"][1:]}))
    own["results"] = own["results"][:1]
    evaluation.write_text(json.dumps(own))
    out = tmp_path / "card.md"
    assert model_card.main(["--weights", str(weights), "--eval", str(evaluation), "--peers", str(peers),
                            "--out", str(out)]) == 0
    card = out.read_text()
    row = next(line for line in card.splitlines() if line.startswith("| portraits (3)"))
    assert "0.957" not in row and "not comparable" in card
    evaluation.write_text("{not json")
    assert model_card.main(["--weights", str(weights), "--eval", str(evaluation)]) == 2   # a user error (exit_codes)
    err = capsys.readouterr().err.strip()
    assert "not valid JSON" in err and len(err.splitlines()) == 1


def test_card_of_an_average_lists_each_source_and_how_it_was_trained(tmp_path):
    manifest = {"model": {"name": "mobilenet"}, "parameters": 1234, "sha256": "cd" * 32, "size_bytes": 4936,
                "commands": ["python -m seg_jax.convert.average_weights --model mobilenet --out w a b"],
                "averaged_from": [
                    {"checkpoint": "workdirs/a/checkpoints/best/3000", "training": {
                        "steps": 4800, "commands": ["python -m seg_jax.train --workdir workdirs/a"]},
                     "data": {"source": "mixed", "image_size": [192, 192]}},
                    "workdirs/b/checkpoints/best/1500"]}
    card = model_card.render(manifest, None, None, tmp_path)
    assert "Equal-weight average of 2 checkpoints" in card
    assert "Source 1: `workdirs/a/checkpoints/best/3000`" in card and "4800 steps" in card
    assert "--workdir workdirs/a" in card and "[192, 192]" in card
    assert "Source 2: `workdirs/b/checkpoints/best/1500`" in card and "No training record" not in card


def test_card_shows_person_recall_beside_the_peers(tmp_path):
    weights, evaluation = _fake(tmp_path)
    rows = json.loads(evaluation.read_text())["results"]
    rows[0]["full_res"]["camvid"] = {"dice": 0.6, "iou": 0.5, "examples": 4, "person_recall": 0.71234,
                                     "person_recall_small": 0.5, "people": 20, "people_small": 12}
    rows[1]["full_res"]["camvid"] = {"dice": 0.7, "person_recall": 0.8, "person_recall_small": 0.61}
    evaluation.write_text(json.dumps({"results": rows}))
    assert model_card.main(["--weights", str(weights), "--eval", str(evaluation)]) == 0
    card = (weights / "MODEL_CARD.md").read_text()
    assert "mediapipe general recall < 1 %" in card
    row = next(line for line in card.splitlines() if line.startswith("| camvid (20, 12)"))
    assert row.split(" | ")[1:] == ["0.712", "0.500", "0.800", "0.610 |"]
