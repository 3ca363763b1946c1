"""Build the classifier corpus, train the default model and ship it in the package.

    PYTHONPATH=src python scripts/build_classifier.py

Writes ``data/classifier_corpus.jsonl`` (the documented training set) and
``src/logloupe/analyse/classifier_model.json`` (the weights the package ships), and prints
precision/recall/F1 per class on a held-out 20 % of the corpus.
"""

from __future__ import annotations

from pathlib import Path

from logloupe.analyse.training.corpus import write_corpus
from logloupe.analyse.training.train import evaluate, format_scores, read_examples, split, train_model

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "classifier_corpus.jsonl"
MODEL = ROOT / "src" / "logloupe" / "analyse" / "classifier_model.json"


def main() -> None:
    count = write_corpus(CORPUS)
    examples = read_examples(CORPUS)
    train, test = split(examples)
    model = train_model(train)
    print(f"corpus: {count} lines; held-out split: {len(test)}")
    print(format_scores(evaluate(model, test)))
    final = train_model(examples, meta={"corpus": "data/classifier_corpus.jsonl", "examples": len(examples)})
    final.save(MODEL)
    print(f"model: {MODEL.relative_to(ROOT)} ({MODEL.stat().st_size // 1024} KiB, {len(final.weights)} rows)")


if __name__ == "__main__":
    main()
