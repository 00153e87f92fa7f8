"""A receiver can check a delivery's signature: right secret and body, and fresh."""

from __future__ import annotations

import hashlib
import hmac

from libs.signing import signature, verify

BODY = b'{"event":"ticket.created"}'


def test_the_header_is_the_hmac_of_timestamp_dot_body() -> None:
    header = signature("s3cret", BODY, at=1_700_000_000)
    expected = hmac.new(b"s3cret", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_a_receiver_accepts_it_and_refuses_any_change() -> None:
    header = signature("s3cret", BODY, at=1_000)
    assert verify("s3cret", header, BODY, now=1_010)
    assert not verify("other", header, BODY, now=1_010)
    assert not verify("s3cret", header, BODY + b" ", now=1_010)
    assert not verify("s3cret", header.replace("t=1000", "t=1001"), BODY, now=1_010)


def test_an_old_or_malformed_header_is_refused() -> None:
    header = signature("s3cret", BODY, at=1_000)
    assert not verify("s3cret", header, BODY, now=1_000 + 301)
    for bad in ("", "v1=abc", "t=abc,v1=abc", "t=1000,t=1000,v1=x", "garbage"):
        assert not verify("s3cret", bad, BODY, now=1_000)


def test_during_a_secret_rotation_either_signature_passes() -> None:
    old, new = signature("old", BODY, at=5), signature("new", BODY, at=5)
    both = f"{new},{old.split(',')[1]}"
    assert verify("old", both, BODY, now=5) and verify("new", both, BODY, now=5)
