"""Shared fixtures for the unit tests: a bundled trained agent and its variant builder, built once."""

import numpy as np
import pytest
import torch

from drlbench.compress.qat import QATConfig

TEST_AGENT = "trpo-hopper"  # small, fast, trained (card return ~3400)


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def agent():
    from drlbench.zoo import load_agent

    return load_agent(TEST_AGENT)


@pytest.fixture(scope="session")
def builder(agent):
    from drlbench.builder import VariantBuilder

    # a small QAT budget keeps the suite fast; the default budget is exercised by the bench suite
    return VariantBuilder(agent, calibration_size=1024, qat_config=QATConfig(rounds=2, grad_steps_per_round=150))


def env_observations(env_id: str, n: int = 200, seed: int = 123) -> np.ndarray:
    """Observations from the env under random actions: inputs to compare two actors on."""
    from drlbench.tasks import make_env, random_action_observations

    env = make_env(env_id)
    try:
        return random_action_observations(env, n, seed)
    finally:
        env.close()
