// Words and times as the screens show them.

import type { Conversation, Message } from "./types";

export const WINDOW_MS = 24 * 60 * 60 * 1000;

export function contactLabel(c: Conversation): string {
  return c.contact.name || c.contact.phone || (c.contact.username ? `@${c.contact.username}` : "Unknown contact");
}

export function time(iso: string | null | undefined): string {
  if (!iso) return "";
  const date = new Date(iso);
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  return sameDay
    ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function duration(ms: number): string {
  const minutes = Math.max(0, Math.floor(ms / 60000));
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return h > 0 ? `${h} h ${m} min` : `${m} min`;
}

/** Milliseconds left in the 24-hour customer-service window (<= 0: closed). */
export function windowLeft(c: Conversation, now = Date.now()): number {
  if (!c.last_inbound_at) return 0;
  return Date.parse(c.last_inbound_at) + WINDOW_MS - now;
}

export function windowText(c: Conversation, now = Date.now()): string {
  const left = windowLeft(c, now);
  return left > 0 ? `Window open, ${duration(left)} left` : "Window closed: templates only";
}

/** The same, short, for the conversation list. */
export function windowShort(c: Conversation, now = Date.now()): string {
  const left = windowLeft(c, now);
  return left > 0 ? `${duration(left)} left` : "Window closed";
}

export function operatorLocked(c: Conversation, now = Date.now()): boolean {
  return !!c.operator_lock_until && Date.parse(c.operator_lock_until) > now;
}

export function botText(c: Conversation, now = Date.now()): string {
  if (operatorLocked(c, now)) return `Operator until ${time(c.operator_lock_until)}`;
  switch (c.bot_mode) {
    case "on":
      return "Bot on";
    case "shadow":
      return "Bot in shadow mode";
    case "off":
      return "Bot off";
    default:
      return "Bot: channel setting";
  }
}

export function botShort(c: Conversation, now = Date.now()): string {
  if (operatorLocked(c, now)) return `Operator until ${time(c.operator_lock_until)}`;
  return c.bot_mode ? `Bot ${c.bot_mode}` : "Bot: channel";
}

/** "auth_token" → "Auth token" */
export function humanize(key: string): string {
  const words = key.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** WhatsApp-style ticks next to the status words (decoration: the words are what assistive technology reads). */
export function ticks(status: string): string {
  return { sent: "✓", delivered: "✓✓", read: "✓✓" }[status] ?? "";
}

/** The status in words (the contract's words for outbound; inbound messages are "received"). */
export function statusText(m: Message): string {
  if (m.status === "failed") return m.error?.message ? `failed: ${m.error.message}` : "failed";
  if (m.status === "suggested") return "suggested (shadow mode, not sent)";
  return m.status;
}

export function size(bytes: number | null): string {
  if (!bytes) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
