"""CLI commands of the analysis stage: classify, train-classifier, analyze."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from logloupe.analyse.classify import Classifier, LinearModel, tenant_model_path
from logloupe.errors import InvalidInput
from logloupe.settings import Settings


def _settings(data_dir: Path | None) -> Settings:
    return Settings.load(data_dir=data_dir)


@click.command("classify")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--per-line", is_flag=True, help="One JSON object per input line, in order: label and confidence.")
@click.option("--tenant", default=None, help="Use this tenant's installed model instead of the default one.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
def classify_command(file: Path, per_line: bool, tenant: str | None, data_dir: Path | None) -> None:
    """Classify each line of FILE as incident, preventive_action or normal.

    Without --per-line, prints one row per pattern with its label and line count.
    """
    if tenant:
        settings = _settings(data_dir)
        try:
            clf = Classifier.for_tenant(settings.data_dir, tenant)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
    else:
        clf = Classifier.default()
    from logloupe.analyse.grouping import open_lines

    out = sys.stdout.buffer
    if per_line:
        for _, line in open_lines(str(file)):
            result = clf.classify(line)
            out.write(orjson.dumps(result.to_dict()) + b"\n")
        out.flush()
        return
    from logloupe.analyse.grouping import default_grouper

    miner = default_grouper(tenant or "default")
    seen: dict[int, tuple[str, str, float, int]] = {}
    for _, line in open_lines(str(file)):
        pid, template = miner(line)
        if pid in seen:
            t, label, conf, count = seen[pid]
            seen[pid] = (t, label, conf, count + 1)
        else:
            result = clf.classify(line)
            seen[pid] = (template, result.label, result.confidence, 1)
    rows = sorted(seen.values(), key=lambda r: -r[3])
    for template, label, conf, count in rows:
        click.echo(f"{label:<18} {conf:5.2f} {count:>8}  {template[:160]}")


@click.command("train-classifier")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", default=None, help="Tenant to install the model for (default: settings.default_tenant).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--holdout", default=0.2, show_default=True, type=click.FloatRange(0.05, 0.5))
@click.option("--epochs", default=60, show_default=True, type=click.IntRange(1, 2000))
def train_classifier_command(
    data: Path, tenant: str | None, data_dir: Path | None, holdout: float, epochs: int
) -> None:
    """Train on DATA (JSON lines of {"message", "label"}), report held-out scores, install the model."""
    from logloupe.analyse.training.train import evaluate, format_scores, read_examples, split, train_model

    settings = _settings(data_dir)
    tenant = tenant or settings.default_tenant
    try:
        path = tenant_model_path(settings.data_dir, tenant)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    examples = read_examples(data)
    train, test = split(examples, holdout)
    model = train_model(train, epochs=epochs)
    click.echo(f"examples: {len(examples)} (train {len(train)}, held out {len(test)})")
    if test:
        click.echo(format_scores(evaluate(model, test)))
    final = train_model(examples, epochs=epochs, meta={"source": str(data), "examples": len(examples)})
    final.save(path)
    LinearModel.load(path)  # fail here, not at first use, if the file is unreadable
    click.echo(f"installed for tenant {tenant}: {path}")


commands: list[click.Command] = [classify_command, train_classifier_command]


def _looks_like_path(target: str) -> bool:
    return target == "-" or Path(target).is_file()


@click.command("analyze")
@click.argument("target")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "markdown", "json", "html"]),
    default="text",
    show_default=True,
)
@click.option(
    "--output",
    "output_mode",
    type=click.Choice(["stdout", "file"]),
    default="stdout",
    show_default=True,
    help="`file`: write to a timestamped file in the current directory.",
)
@click.option(
    "-o",
    "output_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report to this path.",
)
@click.option("--provider", default=None, help="offline, openai, anthropic or huggingface (default: settings).")
@click.option("--model", default=None, help="Model of the provider (default: settings or the provider's).")
@click.option("--base-url", default=None, help="Base URL of the provider's API.")
@click.option(
    "--budget-tokens",
    type=click.IntRange(500),
    default=None,
    help="Input tokens the analysis may send to the LLM in total.",
)
@click.option("--tenant", default=None)
@click.option(
    "--service",
    default=None,
    help="Service of the lines, as an upload names it (default: the file's name without its extension).",
)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@click.option("--llm-classify", is_flag=True, help="Also let the LLM provider relabel patterns (half the budget).")
@click.option(
    "--anomalies/--no-anomalies",
    default=True,
    show_default=True,
    help="Run the online anomaly detector over the file's lines (timestamps, levels, patterns).",
)
def analyze_command(
    target: str,
    fmt: str,
    output_mode: str,
    output_path: Path | None,
    provider: str | None,
    model: str | None,
    base_url: str | None,
    budget_tokens: int | None,
    tenant: str | None,
    service: str | None,
    data_dir: Path | None,
    no_progress: bool,
    llm_classify: bool,
    anomalies: bool,
) -> None:
    """Analyse TARGET (a log file, plain or .gz, `-` for stdin, or one log line) and report.

    Groups lines into patterns, classifies them, and explains incidents with the offline
    knowledge base or an LLM, citing pattern ids and line numbers.
    """
    from logloupe.analyse.pipeline import run_analysis

    settings = _settings(data_dir)
    report = run_analysis(
        target,
        settings=settings,
        is_file=_looks_like_path(target),
        fmt=fmt,
        provider_name=provider,
        model=model,
        base_url=base_url,
        budget_tokens=budget_tokens,
        tenant=tenant,
        progress=not no_progress,
        llm_classify=llm_classify,
        anomalies=anomalies,
        service=service,
    )
    if output_path is None and output_mode == "file":
        stamp = __import__("time").strftime("%Y%m%d-%H%M%S")
        ext = {"text": "txt", "markdown": "md", "json": "json", "html": "html"}[fmt]
        output_path = Path(f"logloupe-report-{stamp}.{ext}")
    if output_path is None:
        click.echo(report, nl=False)
    else:
        output_path.write_text(report, encoding="utf-8")
        click.echo(f"report written to {output_path}", err=True)


@click.command("feedback")
@click.argument("pattern_id")
@click.option("--template", required=True, help="The pattern's template text (for similarity search).")
@click.option("--verdict", type=click.Choice(["helpful", "wrong", "fixed"]), required=True)
@click.option("--resolution", default="", help='What fixed it ("fixed by ...").')
@click.option("--tenant", default=None)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
def feedback_command(
    pattern_id: str, template: str, verdict: str, resolution: str, tenant: str | None, data_dir: Path | None
) -> None:
    """Record feedback on an insight; later analyses cite past resolutions of similar patterns."""
    from logloupe.analyse.knowledge import Feedback, FeedbackStore

    settings = _settings(data_dir)
    try:
        store = FeedbackStore(settings.data_dir, tenant or settings.default_tenant)
        store.add(Feedback(pattern_id.lower(), template, verdict, resolution))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    click.echo(f"feedback stored in {store.path}")


commands.extend([analyze_command, feedback_command])
