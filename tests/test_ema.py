"""``config.ema_decay``: a moving average of the parameters that validation scores and ``seg_jax.artifacts.ship``
exports."""
import json

import jax.numpy as jnp
import numpy as np
import pytest

from seg_jax.configs import apply_variant, get_default_config
from seg_jax.training.checks import ConfigError, check_config, check_resumable
from seg_jax.training.steps import TrainState, ema_decay_at, evaluation_state, update_ema


def test_the_average_moves_a_fraction_of_the_way_and_its_decay_ramps_up():
    ema = update_ema({"w": jnp.zeros(3)}, {"w": jnp.ones(3)}, jnp.float32(0.75))
    np.testing.assert_allclose(ema["w"], 0.25)
    assert float(ema_decay_at(0.998, jnp.int32(0))) == pytest.approx(0.1)      # forgets its start quickly
    assert float(ema_decay_at(0.998, jnp.int32(10_000))) == pytest.approx(0.998)


def test_evaluation_scores_the_average_where_there_is_one():
    plain = TrainState(step=0, params={"w": 1.0}, batch_stats={}, opt_state=(), rng=0)
    assert evaluation_state(plain) is plain
    averaged = plain.replace(ema_params={"w": 2.0})
    assert evaluation_state(averaged).params == {"w": 2.0}


def test_a_decay_outside_0_1_is_one_clear_error():
    config = apply_variant(get_default_config(), "tiny")
    config.ema_decay = 1.0
    with pytest.raises(ConfigError, match=r"config.ema_decay=1.0 must be in \[0, 1\)"):
        check_config(config)


@pytest.mark.parametrize("stored, wanted", [(0.998, 0.0), (0.0, 0.998)])
def test_resuming_with_the_average_switched_on_or_off_is_refused_before_anything_is_written(tmp_path, stored,
                                                                                             wanted):
    config = apply_variant(get_default_config(), "tiny")
    config.ema_decay = stored
    (tmp_path / "config.json").write_text(config.to_json())
    (tmp_path / "checkpoints" / "latest" / "4").mkdir(parents=True)
    config.ema_decay = wanted
    with pytest.raises(ConfigError, match="moving average of the parameters.*new --workdir"):
        check_resumable(tmp_path, config)
    assert json.loads((tmp_path / "config.json").read_text())["ema_decay"] == stored
    config.ema_decay = stored
    check_resumable(tmp_path, config)
