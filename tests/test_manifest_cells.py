"""The manifest's ``cells`` field: how model 3's ConvLSTM cells were made (schema, shipped weights, model card)."""
import json
from pathlib import Path

import pytest

from seg_jax.artifacts.manifest_schema import check_manifest
from seg_jax.artifacts.ship import trained_cells_record
from seg_jax.evaluation.model_card import _cells_lines

HAND = {"kind": "hand-set", "command": "python -m seg_jax.convert.convlstm_warm_start --scale 0.02"}
TRAINED = {"kind": "trained", "command": "python -m research.train_cells", "data": "DAVIS train clips",
           "sequence_length": 8, "steps": 1500}


@pytest.mark.parametrize("cells", [HAND, TRAINED, {**TRAINED, "streams": "4 lanes"}])
def test_schema_accepts_both_kinds(cells):
    assert check_manifest({"model": {"name": "convlstm"}, "cells": cells}, "m.json")["cells"] == cells


@pytest.mark.parametrize("cells, words", [
    ("hand-set", "'cells' must be an object whose 'kind' is 'hand-set' or 'trained'"),
    ({"kind": "learned", "command": "x"}, "'kind' is 'hand-set' or 'trained'"),
    ({"kind": "hand-set"}, "lacks 'command'"),
    ({k: v for k, v in TRAINED.items() if k != "steps"}, "lacks 'steps'"),
    ({**TRAINED, "steps": -1}, "'cells.steps' must be a whole number at least 0"),
    ({**TRAINED, "sequence_length": "8 frames"}, "'cells.sequence_length' must be a whole number"),
    ({**TRAINED, "command": 3}, "'cells.command' must be a string"),
])
def test_schema_rejects_bad_cells_in_one_line(cells, words):
    with pytest.raises(ValueError, match="m.json: ") as e:
        check_manifest({"model": {"name": "convlstm"}, "cells": cells}, "m.json")
    assert words in str(e.value) and "\n" not in str(e.value)


def test_shipped_convlstm_says_its_cells_are_hand_set_by_its_construction_command():
    manifest = json.loads(Path("seg_jax/weights/convlstm/manifest.json").read_text())
    check_manifest(manifest, "shipped")
    assert manifest["cells"]["kind"] == "hand-set"
    assert manifest["cells"]["command"] == manifest["warm_start"]["commands"][0]
    assert manifest["cells"]["command"].startswith("python -m seg_jax.convert.convlstm_warm_start ")


def test_ship_records_a_trained_run_and_the_card_shows_both_kinds():
    record = {"steps": 700, "commands": ["python -m seg_jax.train --config configs/convlstm.py"],
              "config": {"data": {"source": "mixed", "root": "../shared/data", "clip_length": 4,
                                  "weights": {"pseudo_video": 0.5, "davis": 0.5}}}}
    cells = trained_cells_record(record)
    check_manifest({"cells": cells}, "shipped")
    assert (cells["kind"], cells["sequence_length"], cells["steps"]) == ("trained", 4, 700)
    assert "configs/convlstm.py" in cells["command"] and "davis" in cells["data"]
    assert "set by hand" in _cells_lines(HAND)[0]
    assert "trained, 1500 steps" in _cells_lines(TRAINED)[0] and "8 frames" in _cells_lines(TRAINED)[0]
    assert _cells_lines(None) == []


def test_the_papers_protocol_is_one_config_away():
    from configs.convlstm import get_config
    paper, plain = get_config("paper"), get_config()
    assert (paper.data.clip_length, plain.data.clip_length) == (1, 4)
    assert paper.model.name == "convlstm" and not paper.model.residual_cells and paper.temporal_loss_weight == 0
