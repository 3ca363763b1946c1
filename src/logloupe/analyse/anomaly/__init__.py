"""Anomaly detection without labels.

- ``sessions``: a model of normal sessions (or windows) learned from unlabelled training data,
  scoring new sessions by event rarity, transition rarity and count-vector structure.
- ``rates``: robust online baselines (EWMA + MAD, same hour on previous days).
- ``online``: the detector the pipeline feeds, per tenant and service.
- ``tracker``: sessions keyed by an id in the pipeline, scored by a per-service session model.
- ``metrics``: precision, recall, F1 and AUROC with per-sample weights, for the benchmark and tests.
"""

from logloupe.analyse.anomaly.online import OnlineDetector, OnlineSettings
from logloupe.analyse.anomaly.sessions import SessionModel, SessionScore, read_sessions_csv
from logloupe.analyse.anomaly.tracker import SessionTracker, TrackerSettings

__all__ = [
    "OnlineDetector",
    "OnlineSettings",
    "SessionModel",
    "SessionScore",
    "SessionTracker",
    "TrackerSettings",
    "read_sessions_csv",
]
