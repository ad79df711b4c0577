"""The exported actor reproduces SB3's predict(deterministic=True) for all five algorithms."""

import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecNormalize

from drlbench.sb3_import import ALGOS, actor_from_sb3, algo_class, sb3_predict

from .conftest import env_observations


@pytest.mark.parametrize("normalize", [False, True], ids=["raw", "vecnormalize"])
@pytest.mark.parametrize("algo", ALGOS)
def test_actor_matches_sb3_predict(algo, normalize):
    env_id = "Hopper-v5"
    venv = make_vec_env(env_id, n_envs=1, seed=0)
    if normalize:
        venv = VecNormalize(venv)
    kwargs = {"learning_starts": 50} if algo in ("sac", "td3", "ddpg") else {"n_steps": 64, "batch_size": 64}
    if algo == "trpo":
        kwargs["batch_size"] = 32
    model = algo_class(algo)("MlpPolicy", venv, seed=0, device="cpu", **kwargs)
    model.set_logger(Logger(folder=None, output_formats=[]))  # no /tmp/SB3-* folder
    model.learn(128)  # a few updates so weights and running statistics are not at their init values
    vn = venv if normalize else None
    actor = actor_from_sb3(model, vn)
    obs = env_observations(env_id)
    expected = sb3_predict(model, obs, vn)
    np.testing.assert_allclose(actor.act(obs), expected, atol=1e-5, rtol=0)
