"""The reference Skype-like overlay peer: wire protocol, login server, supernode, client."""
