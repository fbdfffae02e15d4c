"""Simulated gateway logs with known ground truth (issue 10, part 2).

A full-information log (every candidate answered every prompt) becomes what a gateway
would log: one call per prompt chosen by a known logging policy, with its
propensity, users, teams, sessions, timestamps and delayed outcome events, while the
full table is kept beside it as the truth. Off-policy evaluation and bandit training
are checked against it.

- `policies`: logging policies (uniform, epsilon/softmax around a bundle, biased humans,
  cheap models first, and `HardPromptPolicy`, which reads the truth to send hard
  prompts to the big model).
- `table`: the full-information table read from a call log.
- `logs`: teams, users, sessions, timestamps and the calls.
- `events`: delayed outcome events in DESIGN.md section 3's format.
- `run`: `simulate` and `write_simulation`.
"""

from training.simulation.policies import (
    POLICIES,
    BiasedHumanPolicy,
    CheapFirstPolicy,
    EpsilonGreedyPolicy,
    HardPromptPolicy,
    LoggingPolicy,
    PrecomputedPolicy,
    PromptContext,
    SoftmaxPolicy,
    UniformPolicy,
    parse_policy,
)
from training.simulation.run import SimulationResult, simulate, write_simulation
from training.simulation.table import FullInformationTable, read_full_information

__all__ = [
    "POLICIES",
    "BiasedHumanPolicy",
    "CheapFirstPolicy",
    "EpsilonGreedyPolicy",
    "FullInformationTable",
    "HardPromptPolicy",
    "LoggingPolicy",
    "PrecomputedPolicy",
    "PromptContext",
    "SimulationResult",
    "SoftmaxPolicy",
    "UniformPolicy",
    "parse_policy",
    "read_full_information",
    "simulate",
    "write_simulation",
]
