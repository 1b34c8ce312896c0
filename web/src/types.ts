// The /v1 API's objects as the console uses them (docs/openapi.json has the full contract).

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface AutoReplyRule {
  keywords: string[];
  reply: string;
}

export interface AutoReply {
  mode: "on" | "shadow" | "off";
  rules: AutoReplyRule[];
  fallback: string | null;
  unsupported_notice: string | null;
  operator_lock_minutes: number;
}

export interface Channel {
  id: string;
  provider: "twilio" | "meta";
  name: string;
  phone_number: string;
  status: string;
  created_at: string;
  webhook_url: string;
  status_callback_url?: string;
  account_sid?: string;
  messaging_service_sid?: string | null;
  phone_number_id?: string;
  business_account_id?: string;
  verify_token?: string;
  webhook_verified_at?: string | null;
  credentials?: Record<string, string>;
  auto_reply?: AutoReply | null;
}

export interface Contact {
  id?: string;
  phone: string | null;
  name: string | null;
  username?: string | null;
}

export interface Conversation {
  id: string;
  channel_id: string;
  provider: "twilio" | "meta";
  contact: Contact;
  last_message_at: string | null;
  last_inbound_at: string | null;
  last_message_preview?: string | null;
  unread_count: number;
  bot_mode: "on" | "shadow" | "off" | null;
  operator_lock_until: string | null;
}

export interface Media {
  content_type: string | null;
  size: number | null;
  status: "pending" | "stored" | "failed";
  url: string | null;
  filename?: string | null;
  caption?: string | null;
}

export interface MessageError {
  code: string;
  provider_code?: string | null;
  message: string;
  retryable?: boolean;
}

export interface Message {
  id: string;
  conversation_id: string;
  direction: "inbound" | "outbound";
  type: string;
  text: string | null;
  media: Media[];
  status: string;
  error: MessageError | null;
  sender: { kind?: string; id?: string | null };
  created_at: string;
  status_updated_at?: string | null;
  edited_at?: string | null;
  deleted_at?: string | null;
}
