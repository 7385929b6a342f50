"""The route table of the agent API's profile, conversations and messages
(``gateway/routes/agent.py``, ``agent_conversations.py``)."""

from __future__ import annotations

from client_sdk import protocol as p

from ..routes.agent_routing import ACCOUNT
from .model import UPDATE, Auth, Param, ops
from .table_public import AFTER, BEFORE

AGENT = Auth.AGENT
T_PROFILE, T_CONV, T_MSG = "Agent: profile", "Agent: conversations", "Agent: messages"
C, M = ACCOUNT + "/conversations", ACCOUNT + "/conversations/{conversation_id}"
LIST_FILTERS = (
    Param("status", str, "open (default), resolved, pending, snoozed or all."),
    Param("assignee_type", str, "me, unassigned, assigned or all (default)."),
    Param("inbox_id", int), Param("team_id", int), Param("q", str, "Search text."),
    Param("page", int, "1-based page, 25 per page."),
)  # fmt: skip

CONVERSATION_OPERATIONS = [
    *ops("GET", "/api/v1/profile", "agent_profile", "The signed-in user and their accounts",
          T_PROFILE, AGENT, response=p.Profile),
    *ops("GET", C, "agent_conversation_list", "Conversations with counts", T_CONV, AGENT,
          response=p.ConversationList, query=LIST_FILTERS),
    *ops("POST", C, "agent_conversation_create", "Create a conversation", T_CONV, AGENT,
          body=p.AgentConversationCreateRequest, response=p.AgentConversation, bots=True),
    *ops("GET", C + "/meta", "agent_conversation_counts", "Conversation counts", T_CONV,
          AGENT, response=p.ConversationCountsResponse, query=LIST_FILTERS[:-1]),
    *ops("GET", M, "agent_conversation_show", "A conversation", T_CONV, AGENT,
          response=p.AgentConversation),
    *ops(UPDATE, M, "agent_conversation_update", "Change the priority", T_CONV, AGENT,
          body=p.ConversationUpdateRequest, response=p.AgentConversation, bots=True),
    *ops("DELETE", M, "agent_conversation_delete", "Delete a conversation", T_CONV, AGENT),
    *ops("POST", M + "/toggle_status", "agent_conversation_toggle_status",
          "Open, resolve, pend or snooze", T_CONV, AGENT, body=p.ToggleStatusRequest,
          response=p.ToggleStatusResponse, bots=True),
    *ops("POST", M + "/toggle_priority", "agent_conversation_toggle_priority",
          "Set or clear the priority", T_CONV, AGENT, body=p.TogglePriorityRequest, bots=True),
    *ops("POST", M + "/custom_attributes", "agent_conversation_custom_attributes",
          "Replace the custom attributes", T_CONV, AGENT, body=p.CustomAttributesRequest,
          response=p.CustomAttributesResponse, bots=True),
    *ops("POST", M + "/update_last_seen", "agent_conversation_seen", "Mark read", T_CONV,
          AGENT, response=p.AgentConversation),
    *ops("POST", M + "/toggle_typing_status", "agent_conversation_typing",
          "Typing on or off", T_CONV, AGENT, body=p.AgentTypingRequest),
    *ops("POST", M + "/assignments", "agent_conversation_assign", "Assign an agent or team",
          T_CONV, AGENT, body=p.AssignmentRequest,
          response=p.Agent | p.TeamRecord | None, bots=True,
          description="Answers the agent, the team, or null when unassigned."),
    *ops("GET", M + "/labels", "agent_conversation_labels", "The labels", T_CONV, AGENT,
          response=p.LabelsResponse),
    *ops("POST", M + "/labels", "agent_conversation_set_labels", "Replace the labels",
          T_CONV, AGENT, body=p.LabelsRequest, response=p.LabelsResponse),
    *ops("GET", M + "/messages", "agent_message_list", "Messages, oldest first", T_MSG,
          AGENT, response=p.MessagesResponse, query=(BEFORE, AFTER,
          Param("filter_internal_messages", str, "true leaves private notes out."))),
    *ops("POST", M + "/messages", "agent_message_create", "Reply or write a private note",
          T_MSG, AGENT, body=p.AgentMessageInput, multipart=True, response=p.AgentMessage,
          bots=True),
    *ops(UPDATE, M + "/messages/{message_id}", "agent_message_status",
          "Report a channel delivery status", T_MSG, AGENT, body=p.MessageStatusRequest,
          response=p.AgentMessage),
    *ops("DELETE", M + "/messages/{message_id}", "agent_message_delete", "Delete a message",
          T_MSG, AGENT, response=p.AgentMessage),
]  # fmt: skip
