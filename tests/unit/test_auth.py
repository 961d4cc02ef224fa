"""Login proofs, replays and tokens: what a forged, replayed or stale message meets."""

from __future__ import annotations

from testbed.peer.auth import (
    ReplayGuard,
    TokenSigner,
    TokenVerifier,
    login_proof,
    proof_ok,
)


def test_proof_binds_password_user_time_and_nonce() -> None:
    proof = login_proof("secret", "alice", 100.0, "n1")
    assert proof_ok("secret", "alice", 100.0, "n1", proof)
    assert not proof_ok("wrong", "alice", 100.0, "n1", proof)
    assert not proof_ok("secret", "bob", 100.0, "n1", proof)
    assert not proof_ok("secret", "alice", 101.0, "n1", proof)
    assert not proof_ok("secret", "alice", 100.0, "n2", proof)


def test_replay_guard_refuses_a_nonce_twice_and_stale_timestamps() -> None:
    guard = ReplayGuard(window=60)
    assert guard.check("n1", ts=1000, now=1000) is None
    assert guard.check("n1", ts=1000, now=1001) == "replayed"
    assert guard.check("n2", ts=900, now=1000) == "replayed"  # outside the window
    assert guard.check("n2", ts=1000, now=1000) is None


def test_replay_guard_memory_is_bounded() -> None:
    guard = ReplayGuard(window=60, capacity=100)
    for i in range(1000):
        assert guard.check(f"n{i}", ts=1000, now=1000) is None
    assert len(guard._seen) <= 100


def test_tokens_verify_only_with_the_issuer_key_and_until_expiry() -> None:
    signer = TokenSigner.generate(lifetime=10)
    verifier = TokenVerifier(signer.public_bytes())
    token = signer.issue("alice", now=1000)
    session = verifier.verify(token, now=1005)
    assert session is not None and session.user == "alice"
    assert verifier.verify(token, now=1011) is None  # expired
    other = TokenVerifier(TokenSigner.generate().public_bytes())
    assert other.verify(token, now=1005) is None  # another issuer
    body, signature = token.split(".")
    forged = TokenSigner.generate().issue("mallory", now=1000).split(".")[0] + "." + signature
    assert verifier.verify(forged, now=1005) is None
    for junk in (None, 42, "", "a.b", "no-dot", "x" * 5000, body + "." + body):
        assert verifier.verify(junk, now=1005) is None


def test_signer_key_survives_a_round_trip_through_bytes() -> None:
    signer = TokenSigner.generate()
    again = TokenSigner.from_bytes(signer.private_bytes())
    assert again.public_bytes() == signer.public_bytes()
