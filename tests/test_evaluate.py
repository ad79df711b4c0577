"""Paired-seed evaluation: deterministic, batch-invariant, and clear about bad observations."""

import numpy as np
import pytest

from drlbench.errors import DrlbenchError
from drlbench.evaluate import EvalResult, evaluate, normalized_score, paired_difference, raw_ratio


def test_same_seed_gives_same_returns(agent):
    a = evaluate(agent.actor.act, agent.env_id, episodes=3, seed=5)
    b = evaluate(agent.actor.act, agent.env_id, episodes=3, seed=5)
    assert a.returns == b.returns and a.seeds == [5, 6, 7]


def test_batching_episodes_does_not_change_returns(agent):
    batched = evaluate(agent.actor.act, agent.env_id, episodes=3, seed=0)
    one_by_one = evaluate(agent.actor.act, agent.env_id, episodes=3, seed=0, max_batch=1)
    # float32 GEMMs round differently per batch size, so returns agree to ~1e-6, not bit for bit;
    # bit-exact reproduction (the zoo cards) uses the same batching.
    np.testing.assert_allclose(batched.returns, one_by_one.returns, rtol=1e-5)


def test_statistics_have_a_student_t_95_percent_interval():
    r = EvalResult("Hopper-v5", [0, 1, 2, 3], [10.0, 12.0, 14.0, 16.0], [1000, 1000, 900, 1000])
    # mean 13, sample std sqrt(20/3), t(0.975, 3) = 3.182446
    half = 3.182446 * (20 / 3) ** 0.5 / 2
    assert r.ci95 == pytest.approx((13 - half, 13 + half), rel=1e-6)
    s = r.summary()
    assert (s["n"], s["mean"], s["actions"], s["mean_length"]) == (4, 13.0, 3900, 975.0)


def test_scores():
    assert raw_ratio(90, 100) == 0.9
    assert normalized_score(90, 100, 0) == 0.9
    assert normalized_score(55, 100, 10) == 0.5  # halfway between random and baseline
    assert np.isnan(raw_ratio(5, -3))  # the raw ratio means nothing for a negative baseline


def test_paired_difference_sees_a_drop_the_two_means_intervals_hide():
    base = [1000.0, 2000.0, 3000.0, 4000.0]  # seeds differ a lot between them ...
    variant = [990.0, 1985.0, 2992.0, 3985.0]  # ... but the variant loses 8-15 on every one
    mean, lo, hi = paired_difference(variant, base)
    half = 3.182446 * np.std([-10, -15, -8, -15], ddof=1) / 2
    assert (mean, lo, hi) == pytest.approx((-12.0, -12.0 - half, -12.0 + half), rel=1e-5) and hi < 0
    v, b = EvalResult("x", [0, 1, 2, 3], variant, [1] * 4), EvalResult("x", [0, 1, 2, 3], base, [1] * 4)
    assert v.ci95[0] < b.ci95[1]  # unpaired intervals overlap: no verdict
    with pytest.raises(DrlbenchError, match="equal-length"):
        paired_difference([1.0, 2.0], [1.0, 2.0, 3.0])


@pytest.mark.parametrize("variant, baseline, random", [(-1500, -1400, -1200), (0, 10, 20), (10, 10, 10)])
def test_normalized_score_is_undefined_when_the_baseline_is_not_above_random(variant, baseline, random):
    # Otherwise the scale flips: a variant worse than a below-random baseline would "keep" > 100 %.
    assert np.isnan(normalized_score(variant, baseline, random))


@pytest.mark.parametrize("obs, message", [
    (np.zeros((1, 5), np.float32), "shape"),
    (np.zeros((2, 3, 11), np.float32), "shape"),
    (np.full((1, 11), np.nan, np.float32), "NaN"),
])
@pytest.mark.parametrize("runtime", ["onnxruntime", "torch"])
def test_bad_observation_is_refused(builder, obs, message, runtime):
    with pytest.raises(DrlbenchError, match=message):
        builder.get("fp32").runner(runtime).act(obs)


def test_single_observation_is_accepted(builder):
    out = builder.get("fp32").runner().act(np.zeros(11, np.float32))
    assert out.shape == (1, 3)


def test_zero_episodes_is_refused(agent):
    with pytest.raises(DrlbenchError, match="episodes"):
        evaluate(agent.actor.act, agent.env_id, episodes=0)


@pytest.mark.parametrize("kwargs, message", [
    ({"episodes": 0}, "episodes must be >= 1, got 0"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"seed": 1.5}, "seed must be an integer >= 0"),
])
def test_bad_episode_count_or_seed_is_refused(agent, kwargs, message):
    with pytest.raises(DrlbenchError, match=message):
        evaluate(agent.actor.act, agent.env_id, **({"episodes": 2} | kwargs))
