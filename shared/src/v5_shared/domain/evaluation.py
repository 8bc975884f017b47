"""Offline (off-policy) evaluation of arm-choosing policies from the logged impressions.

Every served recommendation is logged with the arm Thompson sampling chose, the probability
of that choice (its propensity ``mu(a|x)``), the probability table over the arms that were
eligible, and whether comfort was eligible (``bandit.choose_arm``). That is enough to
estimate what another policy ``pi`` -- a function from the same context to a probability
table over the arms -- would have earned on the same traffic, without serving it:

- **IPS** (inverse propensity scoring): ``mean(w_i * r_i)`` with ``w_i = pi(a_i|x_i) /
  mu(a_i|x_i)``. Unbiased whenever ``pi`` puts mass only on arms the logging policy could
  choose (always the case here: every eligible arm has a propensity > 0).
- **SNIPS** (self-normalised IPS): ``sum(w_i r_i) / sum(w_i)``. Slightly biased (O(1/n)),
  but it stays in the reward range and usually has a much smaller variance when the
  weights are uneven.

Both come with a standard error and a normal-approximation confidence interval, next to
the effective sample size ``(sum w)^2 / sum w^2`` (how many on-policy samples the weighted
log is worth: small means the estimate rests on a few heavily weighted records), the
largest weight, the mean weight (close to 1 when all is well) and the logging policy's own
value, the plain mean reward.

Pure code without I/O: records are consumed one at a time (``OffPolicyEvaluator.add``)
into running sums, so a log of any length is evaluated in constant memory straight from a
database cursor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from v5_shared.domain.bandit import ARMS

# How far a logged probability table may be from summing to 1, and a logged propensity
# from the table's entry for the chosen arm. The services log them unrounded (the sums
# are 1 within 1e-15); this leaves room for a log rounded to 6 decimals.
PROBABILITY_TOLERANCE = 1e-5

DEFAULT_CONFIDENCE = 0.95


class EvaluationError(ValueError):
    """Something the evaluation cannot use; the message says what and where."""


class LogValidationError(EvaluationError):
    """A logged record is malformed (propensity, probability table or reward)."""


class TargetPolicyError(EvaluationError):
    """A target policy returned something that is not a probability table over the eligible
    arms."""


class PolicySpecError(EvaluationError):
    """A target policy specification (``--policy``) could not be parsed."""


class EmptyLogError(EvaluationError):
    """There is nothing to evaluate."""


@dataclass(frozen=True, slots=True)
class LoggedRecord:
    """One logged impression as the evaluation sees it.

    ``arm`` was chosen with probability ``propensity`` out of ``probabilities`` (the logging
    policy's table over the arms that were eligible; its keys are the eligible arms),
    ``comfort`` says whether comfort applied (so whether the comfort arm was eligible), and
    ``reward`` in [-1, 1] is what the impression earned. ``record_id`` (the
    recommendation_id) only names the record in error messages.
    """

    arm: str
    propensity: float
    probabilities: Mapping[str, float]
    comfort: bool
    reward: float
    record_id: str | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """What a target policy may look at: the eligible arms (in the logged table's order),
    the logging policy's probabilities, and whether comfort applied."""

    eligible: tuple[str, ...]
    logged_probabilities: Mapping[str, float]
    comfort: bool


TargetPolicy = Callable[[Context], Mapping[str, float]]


def _where(record: LoggedRecord, index: int | None) -> str:
    if record.record_id is not None:
        return f"record {record.record_id!r}"
    return "record" if index is None else f"record #{index}"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_record(record: LoggedRecord, index: int | None = None) -> None:
    """Raise ``LogValidationError`` unless the record can be evaluated.

    Checked: the propensity is a number in (0, 1]; the probability table is a non-empty
    mapping from arm names to numbers in [0, 1] that sum to 1 (within
    ``PROBABILITY_TOLERANCE``) and contains the chosen arm, whose entry agrees with the
    propensity; the comfort arm is in the table exactly when comfort applied (that is when
    the bandit makes it eligible); the reward is a number in [-1, 1]. NaN and infinities
    fail every range check.
    """
    where = _where(record, index)
    p = record.propensity
    if not _is_number(p) or not (0.0 < p <= 1.0):
        raise LogValidationError(f"{where}: propensity must be a number in (0, 1], got {p!r}")
    table = record.probabilities
    if not isinstance(table, Mapping) or not table:
        raise LogValidationError(
            f"{where}: the probability table must be a non-empty mapping of arm to "
            f"probability, got {table!r}"
        )
    total = 0.0
    for arm, q in table.items():
        if not isinstance(arm, str):
            raise LogValidationError(f"{where}: arm names must be strings, got {arm!r}")
        if not _is_number(q) or not (0.0 <= q <= 1.0):
            raise LogValidationError(
                f"{where}: probability of arm {arm!r} must be a number in [0, 1], got {q!r}"
            )
        total += q
    if abs(total - 1.0) > PROBABILITY_TOLERANCE:
        raise LogValidationError(f"{where}: the logged probabilities sum to {total!r}, not 1")
    if record.arm not in table:
        raise LogValidationError(
            f"{where}: the chosen arm {record.arm!r} is not in the logged probability table "
            f"({', '.join(table)})"
        )
    if abs(table[record.arm] - p) > PROBABILITY_TOLERANCE:
        raise LogValidationError(
            f"{where}: propensity {p!r} disagrees with the logged probability "
            f"{table[record.arm]!r} of the chosen arm {record.arm!r}"
        )
    if ("comfort" in table) != bool(record.comfort):
        state = "applied" if record.comfort else "did not apply"
        presence = "missing from" if record.comfort else "in"
        raise LogValidationError(
            f"{where}: comfort {state} but the comfort arm is {presence} the logged "
            "probability table (it is eligible exactly when comfort applies)"
        )
    r = record.reward
    if not _is_number(r) or not (-1.0 <= r <= 1.0):
        raise LogValidationError(f"{where}: reward must be a number in [-1, 1], got {r!r}")


def _check_target(table: Mapping[str, float], context: Context, where: str) -> Mapping[str, float]:
    if not isinstance(table, Mapping):
        raise TargetPolicyError(f"{where}: the target policy returned {table!r}, not a mapping")
    total = 0.0
    for arm, q in table.items():
        if not _is_number(q) or not (0.0 <= q <= 1.0):
            raise TargetPolicyError(
                f"{where}: target probability of arm {arm!r} must be in [0, 1], got {q!r}"
            )
        if q > 0.0 and arm not in context.logged_probabilities:
            # IPS can only evaluate arms the logging policy could have chosen; here that is
            # exactly the eligible ones, so this is a policy that serves an ineligible arm.
            raise TargetPolicyError(
                f"{where}: the target policy gives probability {q!r} to {arm!r}, which was "
                f"not eligible (eligible: {', '.join(context.eligible)})"
            )
        total += q
    if abs(total - 1.0) > PROBABILITY_TOLERANCE:
        raise TargetPolicyError(f"{where}: the target probabilities sum to {total!r}, not 1")
    return table


# --- estimates -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate with its standard error and confidence interval (NaN when
    undefined, e.g. the standard error of a single record)."""

    value: float
    standard_error: float
    ci_low: float
    ci_high: float

    @classmethod
    def normal(cls, value: float, standard_error: float, z: float) -> Estimate:
        return cls(value, standard_error, value - z * standard_error, value + z * standard_error)

    def covers(self, x: float) -> bool:
        return self.ci_low <= x <= self.ci_high

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": _finite_or_none(self.value),
            "standard_error": _finite_or_none(self.standard_error),
            "ci_low": _finite_or_none(self.ci_low),
            "ci_high": _finite_or_none(self.ci_high),
        }


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """IPS and SNIPS estimates of the target policy's value, the logging policy's own value
    (mean reward), and the weight diagnostics, over ``count`` records."""

    count: int
    confidence: float
    ips: Estimate
    snips: Estimate
    logging: Estimate
    effective_sample_size: float
    max_weight: float
    mean_weight: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "confidence": self.confidence,
            "ips": self.ips.to_dict(),
            "snips": self.snips.to_dict(),
            "logging": self.logging.to_dict(),
            "effective_sample_size": _finite_or_none(self.effective_sample_size),
            "max_weight": self.max_weight,
            "mean_weight": self.mean_weight,
        }


class OffPolicyEvaluator:
    """Running IPS / SNIPS sums over records added one at a time (constant memory).

    **Standard errors.** IPS is a plain mean of ``w_i r_i``: its standard error is the
    sample standard deviation over sqrt(n), and the interval is the normal one.

    SNIPS is a ratio of two means, ``mean(w r) / mean(w)``. Its standard error is the
    delta-method (ratio-estimator, or sandwich) one: linearising the ratio around the
    truth ``V`` gives ``SNIPS - V ~ mean(w (r - V)) / mean(w)``, hence

        se^2 = sum(w_i^2 (r_i - SNIPS)^2) / (sum w_i)^2

    (the usual self-normalised importance sampling variance estimate, e.g. Owen, *Monte
    Carlo theory, methods and examples*, ch. 9), with a normal interval. Chosen over a
    bootstrap because it needs only five running sums -- so the log streams from the
    database in constant memory, where a bootstrap would have to hold every weight and
    reward and resample them B times -- and it is deterministic without a seed. Its
    weakness, shared by every normal interval here, is a log whose weight mass sits on a
    few records: then the interval is too narrow. The effective sample size is reported
    for that reason; below about 100 treat the intervals as optimistic. The unit tests
    check the coverage of both intervals on repeated synthetic logs.
    """

    def __init__(self, policy: TargetPolicy, *, confidence: float = DEFAULT_CONFIDENCE) -> None:
        if not (_is_number(confidence) and 0.0 < confidence < 1.0):
            raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
        self._policy = policy
        self._confidence = float(confidence)
        self._z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
        self._n = 0
        self._sum_r = 0.0
        self._sum_wr = 0.0
        self._sum_w = 0.0
        self._sum_w2 = 0.0
        self._sum_w2r = 0.0
        self._sum_w2r2 = 0.0
        # Welford's running mean and squared deviations, for the sample variances of w*r
        # and of r without cancellation.
        self._mean_wr = 0.0
        self._m2_wr = 0.0
        self._mean_r = 0.0
        self._m2_r = 0.0
        self._max_w = 0.0

    @property
    def count(self) -> int:
        return self._n

    def add(self, record: LoggedRecord) -> float:
        """Validate the record, weigh it by the target policy; return its weight."""
        index = self._n
        validate_record(record, index)
        context = Context(
            eligible=tuple(record.probabilities),
            logged_probabilities=record.probabilities,
            comfort=bool(record.comfort),
        )
        target = _check_target(self._policy(context), context, _where(record, index))
        w = float(target.get(record.arm, 0.0)) / float(record.propensity)
        r = float(record.reward)
        wr = w * r

        self._n += 1
        n = self._n
        self._sum_r += r
        self._sum_wr += wr
        self._sum_w += w
        self._sum_w2 += w * w
        self._sum_w2r += w * wr
        self._sum_w2r2 += wr * wr
        delta = wr - self._mean_wr
        self._mean_wr += delta / n
        self._m2_wr += delta * (wr - self._mean_wr)
        delta = r - self._mean_r
        self._mean_r += delta / n
        self._m2_r += delta * (r - self._mean_r)
        if w > self._max_w:
            self._max_w = w
        return w

    def add_all(self, records: Iterable[LoggedRecord]) -> OffPolicyEvaluator:
        for record in records:
            self.add(record)
        return self

    def result(self) -> EvaluationResult:
        n = self._n
        if n == 0:
            raise EmptyLogError("no logged records to evaluate")
        z = self._z
        nan = math.nan

        ips_value = self._sum_wr / n
        ips_se = math.sqrt(self._m2_wr / (n - 1) / n) if n > 1 else nan
        logging_value = self._sum_r / n
        logging_se = math.sqrt(self._m2_r / (n - 1) / n) if n > 1 else nan

        if self._sum_w > 0.0:
            snips_value = self._sum_wr / self._sum_w
            # sum w^2 (r - S)^2, expanded into the running sums; >= 0 but for rounding.
            spread = (
                self._sum_w2r2
                - 2.0 * snips_value * self._sum_w2r
                + snips_value * snips_value * self._sum_w2
            )
            snips_se = math.sqrt(max(spread, 0.0)) / self._sum_w if n > 1 else nan
            ess = self._sum_w * self._sum_w / self._sum_w2
        else:
            # The target never picks an arm that the log shows: nothing to normalise by.
            snips_value = snips_se = nan
            ess = 0.0

        return EvaluationResult(
            count=n,
            confidence=self._confidence,
            ips=Estimate.normal(ips_value, ips_se, z),
            snips=Estimate.normal(snips_value, snips_se, z),
            logging=Estimate.normal(logging_value, logging_se, z),
            effective_sample_size=ess,
            max_weight=self._max_w,
            mean_weight=self._sum_w / n,
        )


def evaluate(
    records: Iterable[LoggedRecord],
    policy: TargetPolicy,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
) -> EvaluationResult:
    """IPS and SNIPS estimates of ``policy``'s value over ``records`` (see
    ``OffPolicyEvaluator``). Raises ``LogValidationError`` for a malformed record,
    ``TargetPolicyError`` for a bad target table, ``EmptyLogError`` for no records."""
    return OffPolicyEvaluator(policy, confidence=confidence).add_all(records).result()


# --- target policies -------------------------------------------------------------------


def uniform_policy(context: Context) -> dict[str, float]:
    """Every eligible arm equally likely."""
    share = 1.0 / len(context.eligible)
    return dict.fromkeys(context.eligible, share)


def fixed_arm_policy(arm: str) -> TargetPolicy:
    """Always ``arm``; where it is not eligible (comfort when comfort does not apply),
    uniform over the eligible arms.

    The fallback, rather than leaving those records out, keeps the policy defined on the
    whole log, so its value is over the same traffic as every other policy's and the
    numbers compare. (A policy that must serve something where its arm is not allowed
    has to fall back to something; uniform is the neutral choice.)
    """

    def choose(context: Context) -> dict[str, float]:
        if arm in context.logged_probabilities:
            return {arm: 1.0}
        return uniform_policy(context)

    return choose


def greedy_policy(context: Context) -> dict[str, float]:
    """The arm with the highest logged probability: what pure exploitation of the logging
    policy's beliefs would pick. Exact ties share the probability equally."""
    probabilities = context.logged_probabilities
    top = max(probabilities[arm] for arm in context.eligible)
    best = [arm for arm in context.eligible if probabilities[arm] == top]
    share = 1.0 / len(best)
    return dict.fromkeys(best, share)


def epsilon_greedy_policy(epsilon: float) -> TargetPolicy:
    """Greedy with probability ``1 - epsilon``, uniform over the eligible arms with
    probability ``epsilon`` (so ``epsilon`` in [0, 1])."""
    if not (_is_number(epsilon) and 0.0 <= epsilon <= 1.0):
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon!r}")

    def choose(context: Context) -> dict[str, float]:
        table = {arm: epsilon * q for arm, q in uniform_policy(context).items()}
        for arm, q in greedy_policy(context).items():
            table[arm] += (1.0 - epsilon) * q
        return table

    return choose


def logging_policy(context: Context) -> dict[str, float]:
    """The logged probabilities themselves: every weight is 1, so IPS equals the mean
    logged reward (a check of the machinery more than a policy)."""
    return dict(context.logged_probabilities)


@dataclass(frozen=True, slots=True)
class NamedPolicy:
    """A target policy with the specification it was parsed from."""

    spec: str
    choose: TargetPolicy
    description: str

    def __call__(self, context: Context) -> Mapping[str, float]:
        return self.choose(context)


POLICY_SPECS: tuple[str, ...] = (
    "uniform",
    "greedy",
    "logging",
    "arm:<name>",
    "epsilon-greedy:<eps>",
)


def parse_policy(spec: str) -> NamedPolicy:
    """A target policy from its specification (the ``--policy`` of ``v5ctl evaluate``):

    - ``uniform``: uniform over the eligible arms;
    - ``arm:<name>``: always that arm (one of ``ARMS``), uniform where it is not eligible;
    - ``greedy``: the arm with the highest logged probability;
    - ``epsilon-greedy:<eps>``: greedy, and uniform with probability eps in [0, 1];
    - ``logging``: the logged probabilities (IPS = the logged mean reward).

    Raises ``PolicySpecError`` with what was expected.
    """
    expected = f"expected one of: {', '.join(POLICY_SPECS)}"
    if not isinstance(spec, str) or not spec.strip():
        raise PolicySpecError(f"empty policy specification ({expected})")
    text = spec.strip()
    name, sep, argument = text.partition(":")
    if name in ("uniform", "greedy", "logging"):
        if sep:
            raise PolicySpecError(f"policy {name!r} takes no argument, got {text!r}")
        if name == "uniform":
            return NamedPolicy(text, uniform_policy, "uniform over the eligible arms")
        if name == "greedy":
            return NamedPolicy(text, greedy_policy, "the arm with the highest logged probability")
        return NamedPolicy(text, logging_policy, "the logged probabilities (on-policy)")
    if name == "arm":
        if argument not in ARMS:
            raise PolicySpecError(
                f"unknown arm {argument!r} in {text!r} (expected arm:<name> with a name "
                f"among {', '.join(ARMS)})"
            )
        return NamedPolicy(
            text,
            fixed_arm_policy(argument),
            f"always {argument}, uniform over the eligible arms where it is not eligible",
        )
    if name == "epsilon-greedy":
        try:
            epsilon = float(argument)
        except ValueError:
            epsilon = math.nan
        if not sep or not (0.0 <= epsilon <= 1.0):
            raise PolicySpecError(
                f"bad epsilon in {text!r} (expected epsilon-greedy:<eps> with eps a number "
                "in [0, 1], e.g. epsilon-greedy:0.1)"
            )
        return NamedPolicy(
            text,
            epsilon_greedy_policy(epsilon),
            f"greedy, uniform over the eligible arms with probability {epsilon:g}",
        )
    raise PolicySpecError(f"unknown policy {text!r} ({expected})")
