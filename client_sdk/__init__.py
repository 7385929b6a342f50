"""The inboxgate client SDK.

``client_sdk.protocol`` is the wire protocol the gateway shares.
"""
