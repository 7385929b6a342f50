"""inboxgate: a customer-side chat gateway, wire-compatible with Chatwoot's public client API."""

__version__ = "0.1.0"
