"""The redaction set."""

from __future__ import annotations

from cloudstation.events.redaction import Redactor


def test_secrets_are_masked_and_short_ones_ignored() -> None:
    r = Redactor(["hunter22", "abc", ""])
    assert r.redact("pw=hunter22 and abc") == "pw=*** and abc"
    assert len(r) == 1


def test_longest_secret_wins_when_one_contains_another() -> None:
    r = Redactor(["token", "token-extended"])
    assert r.redact("x token-extended y token") == "x *** y ***"


def test_multiline_secret_is_masked_line_by_line() -> None:
    pem = "-----BEGIN KEY-----\nMIIBOgIBAAJBAK\n-----END KEY-----"
    r = Redactor([pem])
    assert r.redact("MIIBOgIBAAJBAK\n") == "***\n"
    assert r.redact(pem) == "***"


def test_regex_metacharacters_are_literal() -> None:
    r = Redactor(["a.b*c+(d)"])
    assert r.redact("xa.b*c+(d)y axbbc") == "x***y axbbc"


def test_safe_cut_moves_before_a_secret_it_would_split() -> None:
    r = Redactor(["SECRET"])
    text = "aaaaSECRETbbbb"
    assert r.safe_cut(text, 7) == 4
    assert r.safe_cut(text, 4) == 4
    assert r.safe_cut(text, 10) == 10
    assert Redactor().safe_cut(text, 7) == 7


def test_no_secrets_is_falsy_and_identity() -> None:
    r = Redactor()
    assert not r
    assert r.redact("anything") == "anything"
    r.add("later-secret")
    assert r and r.redact("a later-secret") == "a ***"
