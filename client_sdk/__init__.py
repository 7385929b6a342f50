"""The inboxgate client SDK. ``client_sdk.protocol`` is the wire protocol shared with the gateway."""
