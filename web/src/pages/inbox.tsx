import { useState } from "preact/hooks";
import { ApiError, get } from "../api";
import { botShort, contactLabel, time, windowLeft, windowShort } from "../format";
import { POLL_MS, usePoll } from "../poll";
import { Link } from "../router";
import type { Conversation, Page } from "../types";
import { ConversationView } from "./conversation";
import { Alert } from "../ui";

const PAGE_SIZE = 30;

export function Inbox({ conversationId }: { conversationId: string | null }) {
  const [conversations, setConversations] = useState<Conversation[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [unreadOnly, setUnreadOnly] = useState(false);
  const [now, setNow] = useState(Date.now());

  const refresh = usePoll(
    async () => {
      try {
        const page = await get<Page<Conversation>>(`/v1/conversations?limit=${PAGE_SIZE}`);
        setConversations(page.items);
        setError(null);
      } catch (e) {
        setError(e instanceof ApiError ? e.message : "The inbox could not be loaded.");
      }
      setNow(Date.now());
    },
    POLL_MS,
    [],
  );

  const shown = (conversations ?? []).filter((c) => !unreadOnly || c.unread_count > 0 || c.id === conversationId);
  const open = conversations?.find((c) => c.id === conversationId) ?? null;

  return (
    <div class={`inbox ${conversationId ? "has-open" : ""}`}>
      <section class="conversations" aria-labelledby="inbox-heading">
        <div class="page-head">
          <h1 id="inbox-heading" tabIndex={-1}>
            Inbox
          </h1>
          <label class="check">
            <input type="checkbox" checked={unreadOnly} onChange={(e) => setUnreadOnly((e.currentTarget as HTMLInputElement).checked)} />
            Unread only
          </label>
        </div>
        <Alert message={error} />
        {conversations === null && !error && <p aria-live="polite">Loading conversations…</p>}
        {conversations?.length === 0 && (
          <p>No conversations yet. When a customer writes to one of your numbers, it shows up here.</p>
        )}
        {conversations !== null && conversations.length > 0 && shown.length === 0 && <p>No unread conversations.</p>}
        <ul class="list" aria-label="Conversations">
          {shown.map((c) => {
            const label = contactLabel(c);
            const windowOpen = windowLeft(c, now) > 0;
            return (
              <li key={c.id} class={`conversation-item ${c.id === conversationId ? "selected" : ""}`}>
                <Link
                  href={`/inbox/${c.id}`}
                  aria-current={c.id === conversationId ? "true" : undefined}
                  aria-label={`${label}${c.unread_count ? `, ${c.unread_count} unread` : ""}`}
                >
                  <span class="line">
                    <span class="name">{label}</span>
                    <span class="when">{time(c.last_message_at)}</span>
                  </span>
                  <span class="line">
                    <span class="preview">{c.last_message_preview || "—"}</span>
                    {c.unread_count > 0 && <span class="badge unread">{c.unread_count} unread</span>}
                  </span>
                  <span class="line small">
                    <span class={windowOpen ? "ok-text" : "muted"}>
                      <span class="visually-hidden">Window: </span>
                      {windowShort(c, now)}
                    </span>
                    <span>{botShort(c, now)}</span>
                  </span>
                </Link>
              </li>
            );
          })}
        </ul>
      </section>
      {conversationId ? (
        <ConversationView key={conversationId} id={conversationId} summary={open} now={now} onChanged={refresh} />
      ) : (
        <section class="conversation empty" aria-label="No conversation open">
          <p class="muted">Choose a conversation to read and answer it. New messages show up here as they arrive.</p>
        </section>
      )}
    </div>
  );
}
