"""The SIP control experiment: Debian's Kamailio as registrar/proxy, baresip as the UA."""
