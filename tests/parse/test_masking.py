from __future__ import annotations

import pytest

from logloupe.parse.masking import MiningMasker, mask_for_mining, redact, value_type


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Initializing CPU#0", "Initializing CPU#<*>"),
        ("imps2: Auto-detected intellimouse PS/2", "imps2: Auto-detected intellimouse PS/<*>"),
        ("jk2_init() Found child 6725 in scoreboard slot 10", "jk2_init() Found child <*> in scoreboard slot <*>"),
        ("Received block blk_-1608999687919862906 src: /10.250.19.102:54106", "Received block <*> src: <*>"),
        ("Deleting block blk_1 file /mnt/hadoop/dfs/data/current/subdir5/blk_1", "Deleting block <*> file <*>"),
        ("Connecting to driver: spark://CoarseGrainedScheduler@10.10.34.11:48069", "Connecting to driver: <*>"),
        ("session 0x14ed93111f20005 closed", "session <*> closed"),
        ("[instance: b9000564-fe1a-409b-b8cc-1e88b294cd1d] Claim successful", "[instance: <*>] Claim successful"),
        ("at Sat Jun 18 02:23:10 2005 done", "at <*> done"),
        ('10.11.10.1 "GET /v2/54fadb/servers/detail HTTP/1.1" status: 200', '<*> "GET <*>" status: <*>'),
        ("node cp-1.slowvm1.tcloud-pg0.utah.cloudlab.us up", "node <*> up"),
        ("isScreenOn true", "isScreenOn <*>"),
        ("timeout of 10000ms exceeded", "timeout of <*> exceeded"),
        ("Security Scaffold v1.0.0 initialized", "Security Scaffold <*> initialized"),
        ("uid=0 euid=0 tty=NODEVssh", "uid=<*> euid=<*> tty=NODEVssh"),
        ("mac FF:F2:9F:16:E2:23:00:0D ok", "mac <*> ok"),
        ("plain words only", "plain words only"),
    ],
)
def test_mining_masks(text: str, masked: str) -> None:
    assert mask_for_mining(text) == masked
    # the cached masker agrees (whitespace normalised), first and second time
    masker = MiningMasker()
    assert masker(text) == " ".join(masked.split())
    assert masker(text) == " ".join(masked.split())


def test_masker_cache_reuses_shapes() -> None:
    masker = MiningMasker()
    masker("took 123 ms for 10.0.0.1")
    masker("took 456 ms for 10.0.0.2")
    assert masker.hits == 1 and masker.misses == 1


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("mail bob.smith+x@example.co.uk now", "mail <EMAIL> now"),
        ("from 192.168.1.20 and fe80::1ff:fe23:4567:890a", "from <IPV4> and <IPV6>"),
        ("mac 00:1A:2B:3C:4D:5E", "mac <MAC>"),
        ("id 123e4567-e89b-12d3-a456-426614174000", "id <UUID>"),
        ("see https://example.com/a?b=1", "see <URL>"),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz123456", "Authorization: Bearer <TOKEN>"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "jwt <JWT>"),
        ("key AKIAIOSFODNN7EXAMPLE", "key <AWS_KEY>"),
        ("password=hunter2 user=bob", "password=<SECRET> user=bob"),
        ('{"api_key": "s3cr3t"}', '{"api_key": "<SECRET>"}'),
        ("card 4111 1111 1111 1111 ok", "card <CARD> ok"),
        ("not a card 4111 1111 1111 1112", "not a card 4111 1111 1111 1112"),
    ],
)
def test_redaction_mask(text: str, masked: str) -> None:
    assert redact(text) == masked


def test_redaction_modes() -> None:
    text = "user bob@example.com"
    assert redact(text, "keep") == text
    hashed = redact(text, "hash")
    assert hashed.startswith("user <EMAIL:") and "bob" not in hashed
    assert hashed == redact(text, "hash")  # stable: equal values stay joinable
    assert hashed != redact(text, "hash", hash_key=b"other tenant")
    assert redact(text, types=frozenset({"IPV4"})) == text


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("42", "int"),
        ("-3.5", "float"),
        ("0x1f", "hex"),
        ("10.0.0.1:80", "ipv4"),
        ("/var/log/x", "path"),
        ("123e4567-e89b-12d3-a456-426614174000", "uuid"),
        ("bob@example.com", "email"),
        ("12ms", "duration"),
        ("5KB", "size"),
        ("https://x.io", "url"),
        ("blk_-12", "id"),
        ("root", "word"),
        ("", "empty"),
        ("a b!", "str"),
    ],
)
def test_value_types(value: str, kind: str) -> None:
    assert value_type(value) == kind


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- done", "<PRIVATE_KEY> done"),
        ("auth Basic dXNlcjpwYXNzd29yZA== ok", "auth Basic <TOKEN> ok"),
        ("basic authentication failed", "basic authentication failed"),  # a word, not a credential
        ("key sk-abcdefghijklmnopqrstu used", "key <API_KEY> used"),
        ("push with ghp_abcdefghijklmnopqrstuvwxyz0123", "push with <API_KEY>"),
        ("db postgres://app:s3cret@db:5432/x", "db postgres://<CREDENTIALS>@db:5432/x"),
        ("call +44 20 7946 0958 now", "call <PHONE> now"),
    ],
)
def test_redaction_of_the_secret_and_personal_rules(text: str, masked: str) -> None:
    assert redact(text) == masked


def test_credentials_in_urls_are_masked_without_the_url() -> None:
    text = "db postgres://app:s3cret@db.internal:5432/x"
    assert redact(text, types=frozenset({"CREDENTIALS"})) == "db postgres://<CREDENTIALS>@db.internal:5432/x"


def test_host_names_only_when_asked_and_not_code_names() -> None:
    text = "to db1.prod.example.com via java.lang.String and os.path"
    assert redact(text) == text  # not in the default set
    assert redact(text, types=frozenset({"HOST"})) == "to <HOST> via java.lang.String and os.path"


def test_one_rule_table_serves_both_purposes() -> None:
    from logloupe.parse.masking import _MINING_RULES, _REDACT_RULES, REDACT_TYPES, RULES, SENSITIVE_TYPES

    assert all(r.mining or r.redact for r in RULES)
    assert tuple(r.pattern for r in RULES if r.mining) == _MINING_RULES
    assert tuple(r for r in RULES if r.redact) == _REDACT_RULES
    shared = {r.type for r in RULES if r.mining and r.redact}
    assert {"UUID", "EMAIL", "JWT", "TOKEN", "AWS_KEY", "SECRET"} <= shared
    assert SENSITIVE_TYPES <= REDACT_TYPES


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("password=hunter2 for bob@example.com", "password=<*> for <*>"),
        ("Authorization: Bearer abcdefghijklmnop1234", "Authorization: Bearer <*>"),
        ('login {"password": "hunter", "user": "x"}', 'login {"password": "<*>", "user": "x"}'),
        ("key AKIAIOSFODNN7EXAMPLE ok", "key <*> ok"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "jwt <*>"),
        ("token expired for user", "token expired for user"),
        ("basic authentication failed", "basic authentication failed"),
    ],
)
def test_secrets_are_variables_to_the_miner(text: str, masked: str) -> None:
    """The same rules that redact secrets make them variables: one template for every user and key."""
    assert mask_for_mining(text) == masked
    masker = MiningMasker()  # the token-by-token path agrees, also for rules that cross a space
    assert masker(text) == " ".join(masked.split())
    assert masker(text) == " ".join(masked.split())
