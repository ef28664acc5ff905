"""The one redactor and its one mask: build logs, error messages, httpx's log records."""

from __future__ import annotations

import logging

import pytest

from cloudstation.redaction import MASK, Redactor, display_url, install_log_redaction, redact_query_token
from cloudstation.sources.errors import redact


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


def test_one_known_credential_is_masked_whatever_its_length() -> None:
    assert Redactor(["ab"], min_length=1).redact("xaby") == "x***y"
    assert redact("clone failed:\n  token tk in\turl", ["tk", ""]) == "clone failed: token *** in url"


def test_the_mask_is_the_same_everywhere() -> None:
    assert MASK == "***"
    assert Redactor(["secret-value"]).redact("secret-value") == MASK
    assert redact_query_token("/a?accessToken=secret-value") == f"/a?accessToken={MASK}"


def test_backend_token_in_an_httpx_record_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    canary = "cs-CANARY-query-token-42"
    install_log_redaction()
    install_log_redaction()  # idempotent: one filter
    httpx_log = logging.getLogger("httpx")
    assert sum(type(f).__name__ == "QueryTokenFilter" for f in httpx_log.filters) == 1
    with caplog.at_level(logging.INFO, logger="httpx"):
        httpx_log.info('HTTP Request: %s %s "%s"', "PUT", f"http://h/api?accessToken={canary}&x=1", "HTTP/1.1 200 OK")
    assert "accessToken=***&x=1" in caplog.text
    assert canary not in caplog.text


def test_display_url_keeps_only_scheme_host_port_and_path() -> None:
    assert display_url("https://user:pw-canary@h.example:8443/a/b?token=q-canary#f") == "https://h.example:8443/a/b"
    assert display_url("http://[::1]:8080/health?k=v") == "http://[::1]:8080/health"
    assert display_url("http://h:99999999/") == "<invalid url>"  # a port out of range is not echoed
