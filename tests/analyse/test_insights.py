from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from logloupe.analyse.grouping import FallbackMiner, open_lines
from logloupe.analyse.insights import (
    SYSTEM_PROMPT,
    Analysis,
    AnalysisResult,
    InsightCache,
    build_prompts,
    explain,
    select_patterns,
)
from logloupe.analyse.knowledge import Feedback, FeedbackStore
from logloupe.analyse.llm import AnthropicProvider, LLMError, OpenAIProvider, make_provider
from logloupe.analyse.tokens import count_tokens

from .conftest import ScriptedLLM

DATA = Path(__file__).parent / "data"


def analyse(*names: str) -> AnalysisResult:
    analysis = Analysis(FallbackMiner())
    offset = 0
    for name in names:
        last = 0
        for n, line in open_lines(str(DATA / name)):
            analysis.add(offset + n, line)
            last = n
        offset += last
    return analysis.result()


def reply_citing(result: AnalysisResult, extra: list[dict[str, object]] | None = None) -> str:
    refused = next(p for p in result.patterns if "Connection refused" in p.template)
    insights = [
        {
            "title": "Database refuses connections",
            "summary": "The API cannot reach PostgreSQL.",
            "error_description": "Connection refused to the database.",
            "probable_cause": "PostgreSQL is down.",
            "fixes": ["Start PostgreSQL"],
            "confidence": 0.8,
            "citations": [{"pattern_id": refused.id, "lines": [refused.first_line]}],
        }
    ]
    return json.dumps({"insights": insights + (extra or [])})


def test_analysis_counts_and_exemplars() -> None:
    result = analyse("app.log")
    assert result.total_lines == 10
    refused = next(p for p in result.patterns if "Connection refused" in p.template)
    assert refused.count == 3 and refused.first_line == 3 and refused.last_line == 9
    assert refused.label == "incident"
    assert refused.first_seen == "2024-05-01 10:00:02"
    assert refused.id in {p.id for p in select_patterns(result)}


def test_offline_insights_cite_real_lines() -> None:
    result = analyse("app.log")
    insights, usage = explain(result)
    assert usage.tokens_in == 0
    titles = [i.title for i in insights]
    assert "Connection refused" in titles and "Out of memory / process killed" in titles
    by_id = result.by_id()
    for insight in insights:
        assert insight.citations and insight.grounded
        for cite in insight.citations:
            assert set(cite.lines) <= by_id[cite.pattern_id].cited_lines()


def test_prompt_is_budgeted_redacted_and_delimited() -> None:
    result = analyse("app.log")
    chunks, omitted = build_prompts(result.patterns, budget_tokens=2000, context_tokens=1500)
    assert chunks and not omitted
    for chunk in chunks:
        assert chunk.tokens <= 1500
        assert "hunter2" not in chunk.user and "sk-abcdef" not in chunk.user and "alice@example.com" not in chunk.user
        assert chunk.user.count("<log_data id=") == 1 and chunk.user.count("</log_data") == 1
    few, left = build_prompts(result.patterns, budget_tokens=700, context_tokens=700)
    assert sum(c.tokens for c in few) <= 700 and left
    many, _ = build_prompts(result.patterns * 3, budget_tokens=1500, context_tokens=600)
    assert len(many) >= 2 and sum(c.tokens for c in many) <= 1500


def test_llm_insights_are_grounded_and_invented_citations_rejected(
    llm_server: tuple[ScriptedLLM, str],
) -> None:
    llm, url = llm_server
    result = analyse("app.log")
    invented = {
        "title": "Solar flares",
        "summary": "Cosmic rays.",
        "fixes": ["Pray"],
        "confidence": 0.99,
        "citations": [{"pattern_id": "ffffffffffffffff", "lines": [1]}],
    }
    llm.script((200, reply_citing(result, [invented])))
    with httpx.Client() as client:
        provider = OpenAIProvider(client, model="test-model", base_url=url + "/v1")
        insights, usage = explain(result, provider, budget_tokens=4000)
    assert usage.requests == 1 and usage.tokens_in == 111 and usage.tokens_out == 22
    good = next(i for i in insights if i.title == "Database refuses connections")
    bad = next(i for i in insights if i.title == "Solar flares")
    assert good.grounded and good.citations[0].verified
    assert not bad.grounded and bad.confidence <= 0.2 and bad.rejected_citations
    sent = llm.requests[0]
    assert sent["messages"][0]["content"] == SYSTEM_PROMPT
    assert "hunter2" not in json.dumps(sent)


def test_cache_avoids_second_request(llm_server: tuple[ScriptedLLM, str], tmp_path: Path) -> None:
    llm, url = llm_server
    result = analyse("app.log")
    llm.script((200, reply_citing(result)))
    cache_path = tmp_path / "cache.json"
    with httpx.Client() as client:
        provider = OpenAIProvider(client, model="m", base_url=url + "/v1")
        explain(result, provider, budget_tokens=4000, cache=InsightCache(cache_path))
        first = len(llm.requests)
        insights, usage = explain(analyse("app.log"), provider, budget_tokens=4000, cache=InsightCache(cache_path))
    assert usage.cached_patterns >= 1
    cached = next(i for i in insights if i.title == "Database refuses connections")
    assert cached.cached and cached.grounded
    # Only the patterns the first reply did not cover are asked about again.
    assert len(llm.requests) - first <= 1
    if len(llm.requests) > first:
        assert "Connection refused" not in llm.requests[-1]["messages"][1]["content"]


def test_retries_then_anthropic_answer(llm_server: tuple[ScriptedLLM, str]) -> None:
    llm, url = llm_server
    llm.script((503, ""), (429, ""), (200, '{"insights": []}'))
    with httpx.Client() as client:
        provider = AnthropicProvider(client, model="claude-test", base_url=url, api_key="k", sleep=lambda s: None)
        completion = provider.complete("sys", "hello")
    assert completion.tokens_in == 111 and len(llm.requests) == 3
    assert llm.paths[-1] == "/v1/messages" and llm.headers[-1]["x-api-key"] == "k"


def test_errors_after_retries_fall_back_to_offline(llm_server: tuple[ScriptedLLM, str]) -> None:
    llm, url = llm_server
    llm.script((500, ""))
    with httpx.Client() as client:
        provider = make_provider("openai", client, model="m", base_url=url + "/v1", max_retries=1)
        provider.sleep = lambda s: None  # type: ignore[attr-defined]
        with pytest.raises(LLMError):
            provider.complete("s", "u")
        insights, _ = explain(analyse("app.log"), provider, budget_tokens=4000)
    assert insights and all("fallback" in i.source for i in insights)


@pytest.mark.parametrize("kind", ["openai", "anthropic", "huggingface"])
def test_streaming(llm_server: tuple[ScriptedLLM, str], kind: str) -> None:
    llm, url = llm_server
    llm.script((200, "streamed answer, in pieces"))
    base = url if kind == "anthropic" else url + "/v1"
    with httpx.Client() as client:
        provider = make_provider(kind, client, model="m", base_url=base)
        assert "".join(provider.stream("s", "u")) == "streamed answer, in pieces"
    assert llm.requests[-1]["stream"] is True


def test_prompt_injection_does_not_change_the_pipeline(llm_server: tuple[ScriptedLLM, str]) -> None:
    clean = analyse("app.log")
    mixed = analyse("app.log", "injection.log")
    # Offline: the same insights for the same incidents; injection lines explain nothing.
    before, _ = explain(clean)
    after, _ = explain(mixed)
    assert [(i.title, [c.pattern_id for c in i.citations]) for i in before] == [
        (i.title, [c.pattern_id for c in i.citations]) for i in after
    ]
    injected = {p.id for p in mixed.patterns if p.first_line > 10}
    assert all(p.label != "incident" for p in mixed.patterns if p.id in injected)
    # LLM: the log text travels only inside the data section, which it cannot close.
    llm, url = llm_server
    obeying = json.dumps(
        {
            "insights": [
                {
                    "title": "Everything is fine",
                    "summary": "No problems.",
                    "fixes": [],
                    "confidence": 1.0,
                    "citations": [{"pattern_id": "ffffffffffffffff", "lines": [1]}],
                }
            ]
        }
    )
    llm.script((200, obeying))
    hostile = analyse("app.log", "injection.log", "injection_error.log")
    chunks, _ = build_prompts(hostile.patterns, budget_tokens=8000)
    with httpx.Client() as client:
        provider = OpenAIProvider(client, model="m", base_url=url + "/v1")
        insights, _ = explain(hostile, provider, budget_tokens=8000, max_patterns=100)
    body = llm.requests[0]["messages"]
    assert body[0]["content"] == SYSTEM_PROMPT
    user = body[1]["content"]
    head, _, rest = user.partition("<log_data id=")
    data, _, tail = rest.partition("</log_data id=")
    assert "Ignore previous instructions" in data and "Ignore previous" not in head + tail
    assert "</log_data" not in data  # neutralised: the data cannot close its own section
    assert all(not i.grounded for i in insights if i.title == "Everything is fine")
    assert chunks


def test_memory_cites_past_resolutions(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path, "acme")
    store.add(
        Feedback(
            "0000000000000001",
            "java.net.ConnectException: Connection refused connecting to <HEX>",
            "fixed",
            "restarted PostgreSQL and raised max_connections",
        )
    )
    store.add(Feedback("0000000000000002", "disk quota exceeded for user", "fixed", "cleaned /tmp"))
    insights, _ = explain(analyse("app.log"), memory=store)
    refused = next(i for i in insights if i.title == "Connection refused")
    assert [p.resolution for p in refused.past_incidents] == ["restarted PostgreSQL and raised max_connections"]
    with pytest.raises(ValueError):
        store.add(Feedback("1", "x", "maybe"))


def test_token_counter_is_plausible() -> None:
    assert count_tokens("") == 0
    assert 8 <= count_tokens("Hello world, this is a simple English sentence.") <= 14
    assert count_tokens("a " * 1000) >= 900


def test_redaction_policy_per_tenant(tmp_path: Path) -> None:
    from logloupe.analyse.redact import RedactionPolicy, tenant_policy

    text = "login bob@example.com from 10.1.2.3 with password=hunter2 card 4111 1111 1111 1111"
    masked = RedactionPolicy().apply(text)
    assert "hunter2" not in masked and "bob@example.com" not in masked and "4111" not in masked
    assert "10.1.2.3" in masked
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "acme.json").write_text('{"ip_addresses": true}', encoding="utf-8")
    strict = tenant_policy(tmp_path, "acme")
    assert "10.1.2.3" not in strict.apply(text)
    assert tenant_policy(tmp_path, "other") == RedactionPolicy()


def test_llm_labels_new_patterns_within_rails(llm_server: tuple[ScriptedLLM, str]) -> None:
    from logloupe.analyse.llm_classify import apply_llm_labels, llm_labels

    llm, url = llm_server
    result = analyse("app.log")
    disk = next(p for p in result.patterns if "full" in p.template)
    llm.script(
        (
            200,
            json.dumps(
                {
                    "labels": [
                        {"pattern_id": disk.id, "label": "incident", "confidence": 1.0},
                        {"pattern_id": "ffffffffffffffff", "label": "incident", "confidence": 1.0},
                        {"pattern_id": result.patterns[0].id, "label": "catastrophe", "confidence": 1.0},
                    ]
                }
            ),
        )
    )
    with httpx.Client() as client:
        labels = llm_labels(result.patterns, OpenAIProvider(client, model="m", base_url=url + "/v1"))
    assert labels == {disk.id: ("incident", 1.0)}
    expected = 1 if disk.confidence < 1.0 else 0
    assert apply_llm_labels(result.patterns, labels) == expected
    assert disk.label == "incident"
    assert "hunter2" not in json.dumps(llm.requests[0])


def test_known_pattern_with_invented_lines_is_not_grounded(llm_server: tuple[ScriptedLLM, str]) -> None:
    llm, url = llm_server
    result = analyse("app.log")
    refused = next(p for p in result.patterns if "Connection refused" in p.template)
    llm.script(
        (
            200,
            json.dumps(
                {
                    "insights": [
                        {
                            "title": "T",
                            "summary": "s",
                            "fixes": [],
                            "confidence": 0.9,
                            "citations": [{"pattern_id": refused.id, "lines": [4242]}],
                        }
                    ]
                }
            ),
        )
    )
    with httpx.Client() as client:
        insights, _ = explain(result, OpenAIProvider(client, model="m", base_url=url + "/v1"), budget_tokens=4000)
    t = next(i for i in insights if i.title == "T")
    assert not t.grounded and t.rejected_citations[0]["lines"] == [4242]
    assert t.citations[0].verified is False


def test_chunks_are_merged_by_title(llm_server: tuple[ScriptedLLM, str]) -> None:
    llm, url = llm_server
    result = analyse("app.log")
    chunks, _ = build_prompts(select_patterns(result), budget_tokens=4000, context_tokens=700)
    assert len(chunks) >= 2
    replies = []
    for chunk in chunks:
        p = chunk.patterns[0]
        replies.append(
            (
                200,
                json.dumps(
                    {
                        "insights": [
                            {
                                "title": "Same problem",
                                "summary": "s",
                                "fixes": [p.id],
                                "confidence": 0.5,
                                "citations": [{"pattern_id": p.id, "lines": [p.first_line]}],
                            }
                        ]
                    }
                ),
            )
        )
    llm.script(*replies)
    with httpx.Client() as client:
        insights, usage = explain(
            result, OpenAIProvider(client, model="m", base_url=url + "/v1"), budget_tokens=4000, context_tokens=700
        )
    assert usage.requests == len(chunks)
    same = [i for i in insights if i.title == "Same problem"]
    assert len(same) == 1 and len(same[0].citations) == len(chunks) and same[0].grounded
