"""Views: records to the wire shapes each API and stream speaks. A view is a pure function,
or a sans-I/O operation (``gateway.store.sql``) that loads what it renders, so a service runs
it in the same transaction as the domain operation whose result it renders.

public                the public API's shapes; the senders and attachments every view shows
push                  the push payloads of realtime events (rendered once, when logged)
messages              public message lists (their senders loaded once per kind)
conversations         the public API's conversation with its visible messages
csat                  a CSAT survey as the survey page reads it
agent                 the agent API's conversation and message shapes
agent_conversations   pages of agent conversations and messages (a fixed number of queries)
admin                 the agent API's contacts, inboxes, agents; the Platform API's shapes
webhooks              what webhook payloads share: the account, a contact, a sender
"""
