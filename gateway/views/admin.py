"""Records to the agent API's contact, inbox and agent shapes, and to the Platform API's
shapes (reference agent §2.3-2.6, §4). Pure functions, as ``gateway.views.public``.
"""

from __future__ import annotations

from msgspec import UNSET

from client_sdk import protocol as p

from ..domain.models import (
    AccountDetails,
    AccountUserRow,
    AdminInbox,
    AgentMember,
    ContactInboxView,
    UserDetails,
)
from ..store.records import Contact
from .public import iso_required


def contact(record: Contact, sessions: list[ContactInboxView] | None = None) -> p.AgentContact:
    """``sessions`` None leaves ``contact_inboxes`` out (``include_contact_inboxes=false``)."""
    return p.AgentContact(
        additional_attributes=record.additional_attributes,
        email=record.email,
        id=record.id,
        name=record.name,
        phone_number=record.phone_number,
        blocked=record.blocked,
        identifier=record.identifier,
        custom_attributes=record.custom_attributes,
        last_activity_at=int(record.last_activity_at) if record.last_activity_at else UNSET,
        created_at=int(record.created_at),
        contact_inboxes=UNSET
        if sessions is None
        else [
            p.ContactInboxEntry(
                source_id=s.source_id,
                inbox=p.ContactInboxInbox(id=s.inbox_id, channel_id=s.inbox_id, name=s.inbox_name),
            )
            for s in sessions
        ],
    )


def inbox(admin: AdminInbox, administrator: bool) -> p.AgentInbox:
    """An API inbox; ``hmac_token`` only for an administrator of its account."""
    box, settings = admin.inbox, admin.settings
    return p.AgentInbox(
        id=box.id,
        channel_id=box.id,  # inboxgate has API channels only: one channel per inbox
        name=box.name,
        greeting_enabled=box.greeting_enabled,
        greeting_message=box.greeting_message,
        working_hours_enabled=box.working_hours_enabled,
        enable_email_collect=settings.enable_email_collect,
        csat_survey_enabled=box.csat_survey_enabled,
        csat_config=settings.csat_config,
        enable_auto_assignment=settings.enable_auto_assignment,
        auto_assignment_config=settings.auto_assignment_config,
        out_of_office_message=box.out_of_office_message,
        working_hours=[p.WorkingHour(**wh) for wh in box.working_hours],
        timezone=box.timezone,
        allow_messages_after_resolved=settings.allow_messages_after_resolved,
        lock_to_single_conversation=box.lock_to_single_conversation,
        sender_name_type=settings.sender_name_type,
        business_name=settings.business_name,
        hmac_mandatory=box.hmac_mandatory,
        hmac_token=box.hmac_token if administrator else UNSET,
        webhook_url=box.webhook_url,
        inbox_identifier=box.identifier,
        additional_attributes=settings.channel_attributes,
    )


def inbox_record(admin: AdminInbox) -> p.InboxRecord:
    box, settings = admin.inbox, admin.settings
    return p.InboxRecord(
        id=box.id,
        channel_id=box.id,
        account_id=box.account_id,
        name=box.name,
        created_at=iso_required(box.created_at),
        updated_at=iso_required(settings.updated_at),
        enable_auto_assignment=settings.enable_auto_assignment,
        greeting_enabled=box.greeting_enabled,
        greeting_message=box.greeting_message,
        working_hours_enabled=box.working_hours_enabled,
        out_of_office_message=box.out_of_office_message,
        timezone=box.timezone,
        enable_email_collect=settings.enable_email_collect,
        csat_survey_enabled=box.csat_survey_enabled,
        allow_messages_after_resolved=settings.allow_messages_after_resolved,
        auto_assignment_config=settings.auto_assignment_config,
        lock_to_single_conversation=box.lock_to_single_conversation,
        sender_name_type=settings.sender_name_type,
        business_name=settings.business_name,
        csat_config=settings.csat_config,
    )


def agent(member: AgentMember, account_id: int) -> p.Agent:
    user = member.user
    return p.Agent(
        id=user.id, account_id=account_id, availability_status=user.availability,
        auto_offline=member.auto_offline, email=user.email, available_name=user.name,
        name=user.name, role=member.role,
    )  # fmt: skip


def created_agent(member: AgentMember, account_id: int, access_token: str | None) -> p.CreatedAgent:
    shown = agent(member, account_id)
    fields = {name: getattr(shown, name) for name in shown.__struct_fields__}
    return p.CreatedAgent(**fields, access_token=access_token if access_token else UNSET)


# -- platform ------------------------------------------------------------------------------


def platform_account(account: AccountDetails) -> p.PlatformAccount:
    return p.PlatformAccount(
        id=account.id, name=account.name, locale=account.locale, domain=account.domain,
        support_email=account.support_email, features=account.features,
        custom_attributes=account.custom_attributes, limits=account.limits,
        status=account.status,
    )  # fmt: skip


def account_user(row: AccountUserRow) -> p.AccountUserRecord:
    return p.AccountUserRecord(
        id=row.id, account_id=row.account_id, user_id=row.user_id, role=row.role,
        inviter_id=row.inviter_id, created_at=iso_required(row.created_at),
        updated_at=iso_required(row.updated_at if row.updated_at is not None else row.created_at),
        availability=row.availability, auto_offline=row.auto_offline,
    )  # fmt: skip


def platform_user(details: UserDetails, access_token: str | None = None) -> p.PlatformUser:
    """``access_token`` only when this answer created or rotated it."""
    user = details.user
    current = details.accounts[0] if details.accounts else None
    return p.PlatformUser(
        access_token=access_token if access_token else UNSET,
        account_id=current[0].id if current else None,
        available_name=details.display_name or user.name,
        display_name=details.display_name,
        email=user.email,
        id=user.id,
        name=user.name,
        pubsub_token=user.pubsub_token,
        custom_attributes=details.custom_attributes,
        role=current[1] if current else None,
        uid=user.email,
        accounts=[
            p.PlatformUserAccount(id=account.id, name=account.name, role=role, active_at=None)
            for account, role in details.accounts
        ],
    )


def user_token(details: UserDetails, access_token: str) -> p.UserToken:
    user = details.user
    return p.UserToken(
        access_token=access_token,
        user=p.TokenUser(
            id=user.id, name=user.name, display_name=details.display_name, email=user.email,
            pubsub_token=user.pubsub_token,
        ),
    )  # fmt: skip
