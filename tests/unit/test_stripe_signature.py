"""Our Stripe-Signature check accepts and rejects exactly what stripe-python's own check does."""

from __future__ import annotations

import time

import pytest
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st

from bot_gateway import stripe_signature

SECRET = "whsec_test_secret"
BODY = b'{"id": "evt_1", "object": "event", "type": "checkout.session.completed", "note": "caf\xc3\xa9"}'


def _sign(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=timestamp)


def _stripe_accepts(body: bytes, header: str | None, secret: str | None) -> bool:
    try:
        stripe.WebhookSignature.verify_header(
            body, header, secret, tolerance=stripe.Webhook.DEFAULT_TOLERANCE
        )
    except (stripe.SignatureVerificationError, UnicodeDecodeError):
        return False
    return True


def _we_accept(body: bytes, header: str | None, secret: str | None) -> bool:
    try:
        stripe_signature.verify(body, header, secret)
    except stripe_signature.SignatureInvalid:
        return False
    return True


def _cases() -> list[tuple[str, bytes, str | None, str | None]]:
    now = int(time.time())
    good = _sign(BODY)
    v1 = good.split(",")[1]
    return [
        ("genuine", BODY, good, SECRET),
        ("body changed by one byte", BODY.replace(b"evt_1", b"evt_2"), good, SECRET),
        ("other secret", BODY, good, "whsec_other"),
        ("no header", BODY, None, SECRET),
        ("empty header", BODY, "", SECRET),
        ("no secret configured", BODY, good, None),
        ("blank secret", BODY, good, "  "),
        ("older than 300 s", BODY, _sign(BODY, timestamp=now - 400), SECRET),
        ("299 s old", BODY, _sign(BODY, timestamp=now - 299), SECRET),
        ("from the future", BODY, _sign(BODY, timestamp=now + 60), SECRET),
        ("timestamp not a number", BODY, f"t=soon,{v1}", SECRET),
        ("no timestamp", BODY, v1, SECRET),
        ("no v1", BODY, f"t={now}", SECRET),
        ("v0 only", BODY, good.replace("v1=", "v0="), SECRET),
        ("bare v1", BODY, f"t={now},v1", SECRET),
        ("rolling secrets: second v1 matches", BODY, f"{good},v1={'0' * 64}", SECRET),
        ("rolling secrets: first v1 matches", BODY, good.replace("t=", f"v1={'a' * 64},t="), SECRET),
        ("garbage", BODY, "nonsense,,,==", SECRET),
        ("body not UTF-8", b"\xff\xfe{}", f"t={now},v1={'0' * 64}", SECRET),
    ]


@pytest.mark.parametrize(
    ("body", "header", "secret"), [c[1:] for c in _cases()], ids=[c[0] for c in _cases()]
)
def test_same_verdict_as_stripe_python(body: bytes, header: str | None, secret: str | None) -> None:
    assert _we_accept(body, header, secret) == _stripe_accepts(body, header, secret)


def test_genuine_fresh_request_is_accepted_and_a_replay_after_the_tolerance_is_not() -> None:
    signed_at = int(time.time())
    header = _sign(BODY, timestamp=signed_at)
    stripe_signature.verify(BODY, header, SECRET, now=signed_at + 300)
    with pytest.raises(stripe_signature.SignatureInvalid, match="tolerance"):
        stripe_signature.verify(BODY, header, SECRET, now=signed_at + 301)


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=64),
    header=st.one_of(
        st.none(),
        st.text(alphabet="tv01=,abcdef ", max_size=40),
        st.integers(min_value=0, max_value=2**40).map(lambda t: f"t={t},v1={'ab' * 32}"),
    ),
)
def test_same_verdict_as_stripe_python_on_arbitrary_input(body: bytes, header: str | None) -> None:
    assert _we_accept(body, header, SECRET) == _stripe_accepts(body, header, SECRET)


@settings(max_examples=100, deadline=None)
@given(body=st.text(max_size=200).map(str.encode))
def test_every_body_stripe_signs_is_accepted(body: bytes) -> None:
    assert _we_accept(body, _sign(body), SECRET)
