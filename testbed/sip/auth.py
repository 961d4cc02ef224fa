"""Digest credentials for `registrar.auth: digest`, without a database.

Each phone's password is md5("KEY:USER") in hex, where KEY is derived from the lab's and
the registrar's names. Kamailio computes the same string in its config (`{s.md5}` of the
To user) and checks the phone's digest against it (auth's pv_auth_check); baresip gets
the password in its account line. So every phone has its own password and no table needs
to be kept in sync. It is not a secret from anyone who can read the lab's configs (nor
need it be: the network is sealed); what it buys is the protocol: a REGISTER without
credentials is answered 401 with a challenge, and the phone sends a second one.
"""

from __future__ import annotations

import hashlib


def lab_key(lab: str, registrar: str) -> str:
    return hashlib.sha256(f"outage-testbed/{lab}/{registrar}".encode()).hexdigest()[:32]


def password(key: str, user: str) -> str:
    """The phone's password, as Kamailio's `$(var(who){s.md5})` computes it."""
    return hashlib.md5(f"{key}:{user}".encode()).hexdigest()  # noqa: S324 - not for secrecy
