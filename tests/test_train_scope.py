"""Training a part of a model: ``config.trainable`` (path substrings) and ``config.freeze_batch_stats``."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from seg_jax.configs import apply_variant, get_default_config
from seg_jax.models.build import build_model, init_variables
from seg_jax.training.checks import ConfigError, check_trainable
from seg_jax.training.optimizer import make_optimizer, plateau_scale, with_plateau_scale
from seg_jax.training.steps import create_train_state, make_train_step


def _config(trainable, freeze):
    config = apply_variant(get_default_config(), "tiny")
    config.model.name = "convlstm"
    config.trainable, config.freeze_batch_stats = trainable, freeze
    config.learning_rate = 1e-2
    return config


def _one_step(config):
    model = build_model(config.model)
    variables = init_variables(model, "convlstm", jax.random.PRNGKey(0), 32, 32)
    state = create_train_state(variables, make_optimizer(config), jax.random.PRNGKey(1))
    rng = np.random.default_rng(0)
    batch = {"image": jnp.asarray(rng.integers(0, 256, (2, 3, 32, 32, 3), dtype=np.uint8)),
             "mask": jnp.asarray(rng.integers(0, 2, (2, 3, 32, 32, 1), dtype=np.uint8) * 255)}
    before = jax.tree_util.tree_map(np.asarray, state)
    after, metrics = make_train_step(model, "convlstm", config)(state, batch)
    assert np.isfinite(float(metrics["loss"]))
    return before, jax.tree_util.tree_map(np.asarray, after)


def _changed(before, after):
    flat_b, flat_a = traverse_util.flatten_dict(before), traverse_util.flatten_dict(after)
    return {"/".join(k): not np.array_equal(flat_b[k], flat_a[k]) for k in flat_b}


def test_only_the_named_parameters_move_and_frozen_batch_stats_stay():
    before, after = _one_step(_config("convlstm", True))
    params = _changed(before.params, after.params)
    assert all(moved for path, moved in params.items() if "convlstm" in path and path.endswith("kernel"))
    assert not any(moved for path, moved in params.items() if "convlstm" not in path)
    assert not any(_changed(before.batch_stats, after.batch_stats).values())


def test_by_default_everything_trains_and_batch_stats_follow_the_batch():
    before, after = _one_step(_config("", False))
    params = _changed(before.params, after.params)
    assert any(moved for path, moved in params.items() if path.startswith("encoder"))
    assert any(_changed(before.batch_stats, after.batch_stats).values())


def test_a_trainable_pattern_that_matches_nothing_is_one_clear_error():
    config = _config("convlstm,lstmm_typo", False)
    variables = init_variables(build_model(config.model), "convlstm", jax.random.PRNGKey(0), 32, 32)
    check_trainable(_config("decoder,convlstm", False), variables["params"])
    with pytest.raises(ConfigError, match="'lstmm_typo' matches no parameter of model 'convlstm'.*convlstm"):
        check_trainable(config, variables["params"])


def test_the_plateau_scale_in_the_optimizer_state_scales_the_step():
    """The reduce-on-plateau multiplier is an injected hyperparameter: the loop lowers it between steps and the
    same jitted step then moves the trainable parameters by that much less (Adam's first step is lr * sign)."""
    config = _config("convlstm", True)
    model = build_model(config.model)
    variables = init_variables(model, "convlstm", jax.random.PRNGKey(0), 32, 32)
    rng = np.random.default_rng(0)
    batch = {"image": jnp.asarray(rng.integers(0, 256, (2, 3, 32, 32, 3), dtype=np.uint8)),
             "mask": jnp.asarray(rng.integers(0, 2, (2, 3, 32, 32, 1), dtype=np.uint8) * 255)}
    step = make_train_step(model, "convlstm", config)

    def delta(scale):
        fresh = jax.tree_util.tree_map(jnp.array, variables)   # the step donates the state's buffers
        state = create_train_state(fresh, make_optimizer(config), jax.random.PRNGKey(1))
        assert float(plateau_scale(state.opt_state)) == 1.0
        state = state.replace(opt_state=with_plateau_scale(state.opt_state, jnp.float32(scale)))
        before = np.asarray(state.params["decoder"]["convlstm_0"]["kernel"])
        after, metrics = step(state, batch)
        np.testing.assert_allclose(float(metrics["learning_rate"]), config.learning_rate * scale, rtol=1e-6)
        return np.asarray(after.params["decoder"]["convlstm_0"]["kernel"]) - before

    full, tenth = delta(1.0), delta(0.1)
    assert np.abs(full).max() > 0
    np.testing.assert_allclose(tenth, 0.1 * full, rtol=1e-3, atol=5e-8)   # float32 rounding of p - lr * u
