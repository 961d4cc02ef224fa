"""Login proofs, replay protection and signed session tokens (docs/protocol.md).

The login server is the only party holding the signing key; supernodes only verify, with
the public key the lab provisions, so a supernode cannot mint sessions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import OrderedDict
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

CLOCK_WINDOW = 60.0


def login_proof(password: str, user: str, ts: float, nonce: str) -> str:
    message = f"{user}|{ts}|{nonce}".encode()
    return hmac.new(password.encode(), message, hashlib.sha256).hexdigest()


def proof_ok(password: str, user: str, ts: float, nonce: str, proof: str) -> bool:
    return hmac.compare_digest(login_proof(password, user, ts, nonce), str(proof))


class ReplayGuard:
    """Accepts each nonce once within the clock window; memory bounded by `capacity`."""

    def __init__(self, window: float = CLOCK_WINDOW, capacity: int = 200_000) -> None:
        self.window = window
        self.capacity = capacity
        self._seen: OrderedDict[str, float] = OrderedDict()

    def check(self, nonce: str, ts: float, now: float | None = None) -> str | None:
        """None if fresh; else the reason to refuse ('replayed')."""
        now = time.time() if now is None else now
        if abs(now - ts) > self.window:
            return "replayed"
        while self._seen and (next(iter(self._seen.values())) < now - self.window
                              or len(self._seen) >= self.capacity):
            self._seen.popitem(last=False)
        if nonce in self._seen:
            return "replayed"
        self._seen[nonce] = now
        return None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    user: str
    issued: float
    expires: float


class TokenSigner:
    def __init__(self, key: Ed25519PrivateKey, lifetime: float = 3600.0) -> None:
        self.key = key
        self.lifetime = lifetime

    @classmethod
    def generate(cls, lifetime: float = 3600.0) -> TokenSigner:
        return cls(Ed25519PrivateKey.generate(), lifetime)

    @classmethod
    def from_bytes(cls, raw: bytes, lifetime: float = 3600.0) -> TokenSigner:
        return cls(Ed25519PrivateKey.from_private_bytes(raw), lifetime)

    def private_bytes(self) -> bytes:
        return self.key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def public_bytes(self) -> bytes:
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def issue(self, user: str, now: float | None = None) -> str:
        now = time.time() if now is None else now
        body = json.dumps({"user": user, "iat": now, "exp": now + self.lifetime},
                          separators=(",", ":")).encode()
        return f"{_b64(body)}.{_b64(self.key.sign(body))}"


class TokenVerifier:
    def __init__(self, public: bytes) -> None:
        self.key = Ed25519PublicKey.from_public_bytes(public)

    def verify(self, token: object, now: float | None = None) -> Session | None:
        """The session if the token is genuine and current, else None."""
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 2048:
            return None
        body_text, signature_text = token.split(".")
        try:
            body, signature = _unb64(body_text), _unb64(signature_text)
            self.key.verify(signature, body)
            claims = json.loads(body)
            session = Session(str(claims["user"]), float(claims["iat"]), float(claims["exp"]))
        except (InvalidSignature, ValueError, KeyError, TypeError):
            return None
        now = time.time() if now is None else now
        return session if session.expires >= now else None
