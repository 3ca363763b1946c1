"""``logloupe detect``: score sessions against a model of normal learned from unlabelled ones."""

from __future__ import annotations

import csv
from pathlib import Path

import click

from logloupe.analyse.anomaly.sessions import (
    DETECT_EXCLUSIVE_EVENTS,
    DETECT_LINE_RARITY,
    DETECT_ROBUST_CORE,
    DETECT_STRUCTURE_SHARE,
    DETECT_UNFINISHED,
    SessionModel,
    read_sessions_csv,
)
from logloupe.errors import InvalidInput

_IN = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


@click.command("detect")
@click.option("--train", "train_path", type=_IN, required=True, help="Unlabelled training sessions (CSV).")
@click.option("--test", "test_path", type=_IN, required=True, help="Sessions to score (CSV).")
@click.option(
    "--output",
    "output_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="Where to write SessionId,Score,Anomaly.",
)
@click.option(
    "--rare-probability",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.01,
    show_default=True,
    help="An event in fewer than this share of training sessions (or never seen) is anomalous.",
)
@click.option(
    "--robust-core",
    type=click.FloatRange(0, 1),
    default=DETECT_ROBUST_CORE,
    show_default=True,
    help="Fit the model of normal to this share of training sessions most alike, then to all that it "
    "explains: training data may hold up to about 1 - this share of anomalies. 0 fits all sessions but the "
    "5% farthest (three rounds): for clean training data with several session shapes.",
)
@click.option(
    "--structure-share",
    type=click.FloatRange(0, 1),
    default=DETECT_STRUCTURE_SHARE,
    show_default=True,
    help="Judge event counts on the events at least this share of the explained training sessions hold "
    "(the sessions' skeleton); the others only by their rarity. 0 judges the counts of every event.",
)
@click.option(
    "--unfinished/--no-unfinished",
    default=DETECT_UNFINISHED,
    show_default=True,
    help="Do not flag, by its counts alone, a session that stopped where normal training sessions pass "
    "with every event so far complete (still in flight when the log was cut).",
)
@click.option(
    "--line-rarity/--no-line-rarity",
    default=DETECT_LINE_RARITY,
    show_default=True,
    help="For fixed windows (sessions nearly all of one length), judge an event's rarity by its share of "
    "the training lines instead of the training windows; windows have no skeleton, so with --structure-share "
    "their event counts are not judged.",
)
@click.option(
    "--exclusive-events/--no-exclusive-events",
    default=DETECT_EXCLUSIVE_EVENTS,
    show_default=True,
    help="Flag optional events that no complete, explained training session combines with each other "
    "(ways to fail: each common, together never) when more of those sessions hold none of them than hold "
    "the event. Turn off when sessions take one of several optional paths that most sessions skip.",
)
@click.option(
    "--explain/--no-explain",
    default=False,
    help="Add a Reasons column saying which events or relations drove each flagged session.",
)
def detect(
    train_path: Path,
    test_path: Path,
    output_path: Path,
    rare_probability: float,
    robust_core: float,
    structure_share: float,
    unfinished: bool,
    line_rarity: bool,
    exclusive_events: bool,
    explain: bool,
) -> None:
    """Learn normal sessions from TRAIN (labels ignored) and score every session of TEST.

    Inputs are CSV with columns SessionId and EventSequence (event ids separated by spaces); any
    other column is ignored. The output has one row per test session, in input order: a score in
    [0, 1] and Anomaly 1 where the score reaches the detector's own threshold (0.5).
    """
    train = read_sessions_csv(train_path)
    test = read_sessions_csv(test_path)
    if not train:
        raise InvalidInput(f"{train_path}: no training sessions")
    model = SessionModel(
        rare_probability=rare_probability,
        robust_core=robust_core,
        structure_share=structure_share,
        unfinished=unfinished,
        line_rarity=line_rarity,
        exclusive_events=exclusive_events,
    ).fit([row.events for row in train])
    scores = model.score_many([row.events for row in test])
    try:
        with output_path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["SessionId", "Score", "Anomaly", *(["Reasons"] if explain else [])])
            for row, result in zip(test, scores, strict=True):
                line = [row.session_id, f"{result.score:.6f}", int(result.anomaly)]
                if explain:
                    line.append("; ".join(result.reasons))
                writer.writerow(line)
    except OSError as exc:
        raise InvalidInput(f"{output_path}: {exc.strerror or exc}") from exc
    flagged = sum(1 for result in scores if result.anomaly)
    click.echo(f"scored {len(test)} sessions, {flagged} anomalous; trained on {len(train)}", err=True)


commands: list[click.Command] = [detect]
