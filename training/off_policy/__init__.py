"""Off-policy evaluation: a policy's quality and cost estimated from logs where only the
chosen model's outcome is known.

Kept apart as Open Bandit Pipeline keeps them (data / estimators / meta):

- :mod:`~training.off_policy.feedback`: :class:`BanditFeedback`, the logged data, its
  input checks and :func:`effective_sample_size`;
- :mod:`~training.off_policy.estimators`: DM, IPS, SNIPS and DR with bootstrap intervals;
- :mod:`~training.off_policy.meta`: :class:`OffPolicyEvaluation`, every estimator on
  one policy for quality and cost;
- :mod:`~training.off_policy.comparison`: :class:`PairedComparison`, two policies'
  difference in quality, cost and net value with a paired bootstrap interval.

The logging policy, when the logs carry no propensity, is estimated by
:func:`training.propensity.fit_logging_policy`, the one estimator `train` uses too.

Open Bandit Pipeline itself (``obp`` 0.5.7, its latest release) requires Python < 3.11,
so it does not install here; these classes keep its names and signatures.
"""

from training.off_policy.comparison import PairedComparison, PolicyDifference
from training.off_policy.estimators import (
    ESTIMATORS,
    BaseOffPolicyEstimator,
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    PolicyValueInterval,
    SelfNormalizedInverseProbabilityWeighting,
    make_estimator,
)
from training.off_policy.feedback import BanditFeedback, check_ope_inputs, effective_sample_size
from training.off_policy.meta import EstimatorResult, OffPolicyEvaluation, PolicyEstimate

__all__ = [
    "ESTIMATORS",
    "BanditFeedback",
    "BaseOffPolicyEstimator",
    "DirectMethod",
    "DoublyRobust",
    "EstimatorResult",
    "InverseProbabilityWeighting",
    "OffPolicyEvaluation",
    "PairedComparison",
    "PolicyDifference",
    "PolicyEstimate",
    "PolicyValueInterval",
    "SelfNormalizedInverseProbabilityWeighting",
    "check_ope_inputs",
    "effective_sample_size",
    "make_estimator",
]
