"""The per-tenant policy over parse.masking's rules: modes, the keyed hash, the policy file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from logloupe.analyse.redact import (
    KEY_FILE,
    MODES,
    RedactionPolicy,
    normalise_mode,
    tenant_hash_key,
    tenant_policy,
)

LINE = (
    "login bob@example.com from 10.1.2.3 (web1.example.com) Bearer abcdefghijklmnop1234 key AKIAIOSFODNN7EXAMPLE "
    "password=hunter2 card 4111 1111 1111 1111"
)
SECRET_VALUES = ("bob@example.com", "abcdefghijklmnop1234", "AKIAIOSFODNN7EXAMPLE", "hunter2", "4111 1111 1111 1111")


def test_mask_mode_masks_secrets_and_personal_data_and_keeps_addresses() -> None:
    out = RedactionPolicy.for_mode("mask").apply(LINE)
    assert not any(v in out for v in SECRET_VALUES)
    assert out == (
        "login <EMAIL> from 10.1.2.3 (web1.example.com) Bearer <TOKEN> key <AWS_KEY> password=<SECRET> card <CARD>"
    )
    assert "<IPV4>" in RedactionPolicy.for_mode("mask", ip_addresses=True).apply(LINE)


def test_strict_mode_masks_addresses_and_host_names_too() -> None:
    out = RedactionPolicy.for_mode("strict").apply(LINE)
    assert "10.1.2.3" not in out and "web1.example.com" not in out and "<HOST>" in out
    assert not any(v in out for v in SECRET_VALUES)


def test_keep_mode_and_its_old_name_off_send_the_text_as_it_is() -> None:
    assert RedactionPolicy.for_mode("keep").apply(LINE) == LINE
    assert RedactionPolicy.for_mode("off").apply(LINE) == LINE
    assert normalise_mode("off") == "keep"
    assert set(MODES) == {"mask", "hash", "keep", "strict"}
    with pytest.raises(ValueError, match="mask, hash, keep"):
        normalise_mode("bogus")


def test_hash_mode_is_keyed_per_tenant_stable_and_persisted(tmp_path: Path) -> None:
    acme = tenant_policy(tmp_path, "acme", RedactionPolicy.for_mode("hash"))
    out = acme.apply(LINE + " again bob@example.com")
    assert not any(v in out for v in SECRET_VALUES)
    hashes = [w.rstrip(")") for w in out.split() if w.startswith("<EMAIL:")]
    assert len(hashes) == 2 and hashes[0] == hashes[1]  # equal values stay correlatable
    assert tenant_policy(tmp_path, "acme", RedactionPolicy.for_mode("hash")).apply(LINE) == acme.apply(LINE)
    other = tenant_policy(tmp_path, "globex", RedactionPolicy.for_mode("hash"))
    assert other.apply("bob@example.com") != acme.apply("bob@example.com")  # never joinable across tenants
    key_file = tmp_path / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key_file.read_bytes()) == 32
    assert tenant_hash_key(tmp_path, "acme") == acme.hash_key
    # A new data dir is a new secret: hashes cannot be recomputed elsewhere from guessed values.
    assert tenant_policy(tmp_path / "other", "acme", RedactionPolicy.for_mode("hash")).apply(LINE) != acme.apply(LINE)


def test_policy_file_sets_the_mode_and_flags(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "acme.json").write_text('{"mode": "hash", "card_numbers": false}', encoding="utf-8")
    policy = tenant_policy(tmp_path, "acme")
    assert policy.mode == "hash" and not policy.card_numbers
    out = policy.apply(LINE)
    assert "<EMAIL:" in out and "4111 1111 1111 1111" in out
    assert tenant_policy(tmp_path, "other") == RedactionPolicy()
    with pytest.raises(ValueError):
        tenant_policy(tmp_path, "../etc")


def test_a_stored_mode_this_version_does_not_know_masks(tmp_path: Path) -> None:
    from logloupe.analyse.redact import tenant_redaction

    out = tenant_redaction(tmp_path, "acme", "from-the-future").apply(LINE)
    assert not any(v in out for v in SECRET_VALUES) and "<EMAIL>" in out
    assert tenant_redaction(tmp_path, "acme", "off").apply(LINE) == LINE
    hashed = tenant_redaction(tmp_path, "acme", "hash")
    assert hashed.hash_key == tenant_hash_key(tmp_path, "acme")
