-- A database at schema version 1 as the hand-written DDL made it (before the DDL was rendered
-- from one description per table); tests/test_schema.py migrates it. Do not edit.
BEGIN TRANSACTION;
CREATE TABLE account_users (
                account_id INTEGER NOT NULL REFERENCES accounts(id),
                user_id INTEGER NOT NULL REFERENCES users(id),
                role TEXT NOT NULL,
                created_at REAL NOT NULL,
                PRIMARY KEY (account_id, user_id));
INSERT INTO "account_users" VALUES(1,1,'administrator',2.0);
CREATE TABLE accounts (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL,
                last_display_id INTEGER NOT NULL DEFAULT 0,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL);
INSERT INTO "accounts" VALUES(1,'Acme',1,1.0,1.0);
CREATE TABLE attachments (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                message_id INTEGER NOT NULL REFERENCES messages(id),
                account_id INTEGER NOT NULL,
                file_type TEXT NOT NULL,
                extension TEXT,
                file_name TEXT NOT NULL,
                content_type TEXT NOT NULL,
                file_size INTEGER NOT NULL,
                storage_key TEXT NOT NULL,
                width INTEGER,
                height INTEGER,
                created_at REAL NOT NULL);
CREATE TABLE contact_inboxes (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                contact_id INTEGER NOT NULL REFERENCES contacts(id),
                inbox_id INTEGER NOT NULL REFERENCES inboxes(id),
                source_id TEXT NOT NULL,
                pubsub_token TEXT NOT NULL UNIQUE,
                hmac_verified BOOLEAN NOT NULL DEFAULT FALSE,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                UNIQUE (inbox_id, source_id));
INSERT INTO "contact_inboxes" VALUES(1,1,1,'source-1','contact-token-1',1,1.0,1.0);
CREATE TABLE contacts (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                account_id INTEGER NOT NULL REFERENCES accounts(id),
                name TEXT NOT NULL DEFAULT '',
                email TEXT,
                phone_number TEXT,
                identifier TEXT,
                additional_attributes TEXT NOT NULL DEFAULT '{}',
                custom_attributes TEXT NOT NULL DEFAULT '{}',
                blocked BOOLEAN NOT NULL DEFAULT FALSE,
                contact_type TEXT NOT NULL DEFAULT 'visitor',
                last_activity_at REAL,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                UNIQUE (account_id, identifier),
                UNIQUE (account_id, email),
                UNIQUE (account_id, phone_number));
INSERT INTO "contacts" VALUES(1,1,'Bo',NULL,NULL,'bo-1','{}','{}',0,'visitor',NULL,1.0,1.0);
CREATE TABLE conversations (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                account_id INTEGER NOT NULL REFERENCES accounts(id),
                inbox_id INTEGER NOT NULL REFERENCES inboxes(id),
                contact_id INTEGER NOT NULL REFERENCES contacts(id),
                contact_inbox_id INTEGER NOT NULL REFERENCES contact_inboxes(id),
                display_id INTEGER NOT NULL,
                uuid TEXT NOT NULL UNIQUE,
                status TEXT NOT NULL,
                assignee_id INTEGER,
                contact_last_seen_at REAL,
                agent_last_seen_at REAL,
                last_activity_at REAL NOT NULL,
                waiting_since REAL,
                custom_attributes TEXT NOT NULL DEFAULT '{}',
                additional_attributes TEXT NOT NULL DEFAULT '{}',
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                UNIQUE (account_id, display_id));
INSERT INTO "conversations" VALUES(1,1,1,1,1,1,'conv-uuid-1','open',NULL,NULL,NULL,3.0,NULL,'{}','{}',3.0,3.0);
CREATE TABLE csat_survey_responses (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                account_id INTEGER NOT NULL,
                conversation_id INTEGER NOT NULL REFERENCES conversations(id),
                message_id INTEGER NOT NULL UNIQUE REFERENCES messages(id),
                rating INTEGER NOT NULL,
                feedback_message TEXT,
                contact_id INTEGER,
                assigned_agent_id INTEGER,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL);
CREATE TABLE events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL,
                payload BLOB NOT NULL,
                created_at REAL NOT NULL);
CREATE TABLE inboxes (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                account_id INTEGER NOT NULL REFERENCES accounts(id),
                name TEXT NOT NULL,
                identifier TEXT NOT NULL UNIQUE,
                hmac_token TEXT NOT NULL UNIQUE,
                hmac_mandatory BOOLEAN NOT NULL DEFAULT FALSE,
                webhook_url TEXT,
                csat_survey_enabled BOOLEAN NOT NULL DEFAULT FALSE,
                csat_display_type TEXT NOT NULL DEFAULT 'emoji',
                csat_message TEXT,
                timezone TEXT NOT NULL DEFAULT 'UTC',
                working_hours_enabled BOOLEAN NOT NULL DEFAULT FALSE,
                working_hours TEXT NOT NULL,
                out_of_office_message TEXT,
                greeting_enabled BOOLEAN NOT NULL DEFAULT FALSE,
                greeting_message TEXT,
                lock_to_single_conversation BOOLEAN NOT NULL DEFAULT FALSE,
                allowed_origins TEXT NOT NULL DEFAULT '[]',
                reply_time_window_hours INTEGER,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL);
INSERT INTO "inboxes" VALUES(1,1,'Web','inbox-1','hmac-1',0,NULL,0,'emoji',NULL,'UTC',0,'[]',NULL,0,NULL,0,'[]',NULL,1.0,1.0);
CREATE TABLE messages (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                account_id INTEGER NOT NULL,
                inbox_id INTEGER NOT NULL,
                conversation_id INTEGER NOT NULL REFERENCES conversations(id),
                content TEXT,
                message_type INTEGER NOT NULL,
                content_type TEXT NOT NULL DEFAULT 'text',
                content_attributes TEXT NOT NULL DEFAULT '{}',
                private BOOLEAN NOT NULL DEFAULT FALSE,
                status TEXT NOT NULL DEFAULT 'sent',
                sender_type TEXT,
                sender_id INTEGER,
                echo_id TEXT,
                source_id TEXT,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                UNIQUE (conversation_id, echo_id));
INSERT INTO "messages" VALUES(1,1,1,1,'hello',0,'text','{}',0,'sent','Contact',1,'echo-1',NULL,3.0,3.0);
CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL);
INSERT INTO "schema_migrations" VALUES(1,'initial schema',0.0);
CREATE TABLE stream_entries (
                stream TEXT NOT NULL,
                stream_offset INTEGER NOT NULL,
                event_id INTEGER NOT NULL REFERENCES events(id),
                created_at REAL NOT NULL,
                PRIMARY KEY (stream, stream_offset));
CREATE TABLE streams (
                name TEXT PRIMARY KEY,
                epoch TEXT NOT NULL,
                last_offset INTEGER NOT NULL);
CREATE TABLE users (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                name TEXT NOT NULL,
                email TEXT NOT NULL UNIQUE,
                access_token_hash TEXT NOT NULL UNIQUE,
                pubsub_token TEXT NOT NULL UNIQUE,
                availability TEXT NOT NULL DEFAULT 'online',
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL);
INSERT INTO "users" VALUES(1,'Ann','ann@example.com','hash-1','user-token-1','online',1.0,1.0);
CREATE INDEX contact_inboxes_contact ON contact_inboxes (contact_id);
CREATE INDEX conversations_contact ON conversations (contact_id);
CREATE INDEX conversations_contact_inbox ON conversations (contact_inbox_id);
CREATE INDEX messages_conversation ON messages (conversation_id, id);
CREATE INDEX messages_conversation_time ON messages (conversation_id, created_at);
CREATE INDEX attachments_message ON attachments (message_id);
CREATE INDEX stream_entries_time ON stream_entries (created_at);
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('accounts',1);
INSERT INTO "sqlite_sequence" VALUES('inboxes',1);
INSERT INTO "sqlite_sequence" VALUES('users',1);
INSERT INTO "sqlite_sequence" VALUES('contacts',1);
INSERT INTO "sqlite_sequence" VALUES('contact_inboxes',1);
INSERT INTO "sqlite_sequence" VALUES('conversations',1);
INSERT INTO "sqlite_sequence" VALUES('messages',1);
COMMIT;
