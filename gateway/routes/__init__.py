"""Routes: decode at the edge, call a service, encode at the edge."""
