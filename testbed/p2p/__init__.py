"""The peer-assisted CDN (Kontiki/iPlayer): origin, tracker and BitTorrent home PCs."""
