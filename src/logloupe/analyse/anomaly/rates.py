"""Robust, seasonality-aware baselines for counts per time bucket.

A baseline keeps an exponentially weighted mean and mean absolute deviation (EWMA + MAD) of the
values it is fed, and the same per hour of the day, so that a quiet night is compared with
previous nights once two days have been seen. Values are clipped to the mean ± ``clip`` sigma
before they update the baseline, so a spike does not become the new normal at once, while a
lasting change of level is still learned within a few time constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

HOURS = 24
# Mean absolute deviation of a normal variable is sigma * sqrt(2/pi).
MAD_TO_SIGMA = math.sqrt(math.pi / 2)


@dataclass(slots=True)
class Ewma:
    alpha: float
    mean: float = 0.0
    dev: float = 0.0
    n: int = 0

    def update(self, value: float) -> None:
        if self.n == 0:
            self.mean = value
            self.dev = 0.0
        else:
            self.dev += self.alpha * (abs(value - self.mean) - self.dev)
            self.mean += self.alpha * (value - self.mean)
        self.n += 1

    @property
    def sigma(self) -> float:
        return self.dev * MAD_TO_SIGMA


@dataclass(slots=True)
class RateBaseline:
    """Expected count per bucket, overall and by hour of day."""

    alpha: float = 0.05
    season_alpha: float = 0.1
    season_min: int = 120  # updates of one hour slot before it is trusted (two days of minutes)
    clip: float = 4.0
    overall: Ewma = field(init=False)
    hourly: list[Ewma] = field(init=False)

    def __post_init__(self) -> None:
        self.overall = Ewma(self.alpha)
        self.hourly = [Ewma(self.season_alpha) for _ in range(HOURS)]

    @property
    def n(self) -> int:
        return self.overall.n

    def expected(self, hour: int) -> tuple[float, float]:
        """(mean, sigma) for a bucket in this hour of the day."""
        slot = self.hourly[hour % HOURS]
        if slot.n >= self.season_min:
            return slot.mean, max(slot.sigma, self.overall.sigma * 0.5)
        return self.overall.mean, self.overall.sigma

    def zscore(self, value: float, hour: int) -> float:
        """Deviation in units of the baseline's spread plus Poisson counting noise."""
        mean, sigma = self.expected(hour)
        return (value - mean) / math.sqrt(sigma * sigma + mean + 1.0)

    def update(self, value: float, hour: int) -> None:
        if self.overall.n:
            mean, sigma = self.expected(hour)
            spread = math.sqrt(sigma * sigma + mean + 1.0)
            value = min(max(value, mean - self.clip * spread), mean + self.clip * spread)
        self.overall.update(value)
        self.hourly[hour % HOURS].update(value)


@dataclass(slots=True)
class RatioBaseline:
    """Expected share of one kind of event (errors) among a bucket's events."""

    alpha: float = 0.05
    clip: float = 4.0
    ewma: Ewma = field(init=False)

    def __post_init__(self) -> None:
        self.ewma = Ewma(self.alpha)

    @property
    def n(self) -> int:
        return self.ewma.n

    def zscore(self, hits: int, total: int) -> float:
        """Binomial noise of the bucket plus the baseline's own spread."""
        p = self.ewma.mean
        ratio = hits / total
        p_floor = max(p, 1.0 / total)
        var = p_floor * (1 - min(p_floor, 0.999)) / total + self.ewma.sigma**2
        return (ratio - p) / math.sqrt(var)

    def update(self, hits: int, total: int) -> None:
        ratio = hits / total
        if self.ewma.n:
            p = self.ewma.mean
            spread = math.sqrt(max(p, 1.0 / total) / total + self.ewma.sigma**2)
            ratio = min(max(ratio, p - self.clip * spread), p + self.clip * spread)
        self.ewma.update(ratio)


def squash(z: float, z_reference: float = 6.0, score_reference: float = 0.7) -> float:
    """Maps |z| ≥ 0 to [0, 1) so that ``|z| == z_reference`` scores ``score_reference``."""
    k = z_reference * (1 - score_reference) / score_reference
    z = abs(z)
    return z / (z + k)
