import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, get } from "../api";
import { botText, contactLabel, operatorLocked, size, statusText, ticks, time, windowLeft, windowText } from "../format";
import { POLL_MS, usePoll } from "../poll";
import { Link } from "../router";
import type { Conversation, Media, Message, Page } from "../types";
import { Alert } from "../ui";

const MESSAGES_PAGE = 50;
// Without anything on its way, the open conversation is re-read this often anyway (edits, deletions, late ticks);
// a change of the conversation in the inbox list (a new message) re-reads it at once.
const IDLE_REFRESH_MS = 30_000;
// An outbound message this young that is not read or failed yet: its ticks are polled at POLL_MS.
const TICKS_WATCH_MS = 10 * 60 * 1000;

function errorText(e: unknown, fallback: string): string {
  return e instanceof ApiError ? e.message : fallback;
}

function MediaPreview({ media }: { media: Media }) {
  if (media.status === "pending") return <p class="media muted">Attachment arriving…</p>;
  if (media.status === "failed" || !media.url) return <p class="media error">Attachment could not be stored.</p>;
  const type = media.content_type ?? "";
  const label = media.filename || media.caption || type || "attachment";
  if (type.startsWith("image/")) return <img class="media" src={media.url} alt={media.caption || "Image from the contact"} loading="lazy" />;
  if (type.startsWith("audio/")) return <audio class="media" controls src={media.url} aria-label={`Audio, ${size(media.size)}`} />;
  if (type.startsWith("video/")) return <video class="media" controls src={media.url} aria-label={`Video, ${size(media.size)}`} />;
  return (
    <p class="media">
      <a href={media.url} target="_blank" rel="noopener noreferrer">
        {label}
      </a>{" "}
      <span class="muted">{size(media.size)}</span>
    </p>
  );
}

function Bubble({ message }: { message: Message }) {
  const inbound = message.direction === "inbound";
  const by = inbound ? "Contact" : message.sender.kind === "auto" ? "Auto-reply" : message.sender.kind === "business_app" ? "WhatsApp Business app" : "You";
  return (
    <li class={`bubble ${inbound ? "in" : "out"} ${message.status === "failed" ? "failed" : ""}`}>
      <p class="who">
        {by} · <time dateTime={message.created_at}>{time(message.created_at)}</time>
      </p>
      {message.deleted_at ? (
        <p class="muted">This message was deleted.</p>
      ) : (
        <>
          {message.media.map((m, i) => (
            <MediaPreview key={i} media={m} />
          ))}
          {message.text && <p class="text">{message.text}</p>}
          {!message.text && !message.media.length && <p class="muted">[{message.type}]</p>}
          {message.edited_at && <p class="muted small">edited</p>}
        </>
      )}
      {!inbound && (
        <p class={`status ${message.status}`}>
          <span class="visually-hidden">Status: </span>
          {statusText(message)}
          {ticks(message.status) && <span aria-hidden="true"> {ticks(message.status)}</span>}
        </p>
      )}
    </li>
  );
}

function Composer({ conversation, now, onSent }: { conversation: Conversation; now: number; onSent: (m: Message) => void }) {
  const open = windowLeft(conversation, now) > 0;
  const meta = conversation.provider === "meta";
  const [params, setParams] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const key = useRef<string>(crypto.randomUUID());

  const onSubmit = async (event: Event) => {
    event.preventDefault();
    if (busy) return;
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    let body: Record<string, unknown>;
    if (open) {
      const text = String(data.get("text") ?? "").trim();
      const mediaUrl = String(data.get("media_url") ?? "").trim();
      if (!text && !mediaUrl) return;
      body = mediaUrl
        ? { type: String(data.get("media_type")), media_url: mediaUrl, ...(text ? { caption: text } : {}) }
        : { type: "text", text };
    } else {
      const template = String(data.get("template") ?? "").trim();
      const values = params.map((p) => p.trim());
      body = meta
        ? {
            type: "template",
            template: {
              name: template,
              language: String(data.get("language") ?? "en_US").trim(),
              components: values.length ? [{ type: "body", parameters: values.map((text) => ({ type: "text", text })) }] : [],
            },
          }
        : { type: "template", template: { content_sid: template, variables: Object.fromEntries(values.map((v, i) => [String(i + 1), v])) } };
    }
    setBusy(true);
    setError(null);
    try {
      const message = await api<Message>("POST", `/v1/conversations/${conversation.id}/messages`, {
        body,
        idempotencyKey: key.current,
      });
      form.reset();
      setParams([]);
      onSent(message);
    } catch (e) {
      setError(errorText(e, "The message could not be sent."));
    } finally {
      key.current = crypto.randomUUID(); // a retry after an answer is a new message; a double click is not
      setBusy(false);
    }
  };

  return (
    <form class="composer" onSubmit={onSubmit} aria-label="Reply">
      {open ? (
        <>
          <label for="composer-text" class="visually-hidden">
            Message
          </label>
          <textarea
            id="composer-text"
            name="text"
            rows={2}
            placeholder="Write a message"
            maxLength={4096}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
                e.preventDefault();
                (e.currentTarget as HTMLTextAreaElement).form?.requestSubmit();
              }
            }}
          />
          <details class="attach">
            <summary>Attach media by link</summary>
            <label for="composer-media-url">Media URL</label>
            <input id="composer-media-url" name="media_url" type="url" placeholder="https://…" />
            <label for="composer-media-type">Media type</label>
            <select id="composer-media-type" name="media_type">
              <option value="image">Image</option>
              <option value="document">Document</option>
              <option value="audio">Audio</option>
              <option value="video">Video</option>
            </select>
          </details>
        </>
      ) : (
        <fieldset class="template">
          <legend>The 24-hour window is closed: send an approved template</legend>
          <label for="composer-template">Template</label>
          <input
            id="composer-template"
            name="template"
            required
            spellcheck={false}
            placeholder={meta ? "order_update" : "HX…"}
            aria-describedby="composer-template-hint"
          />
          <p id="composer-template-hint" class="hint">
            {meta ? "The template's name as approved in WhatsApp Manager." : "The Content SID (HX…) of an approved Twilio content template."}
          </p>
          {meta && (
            <>
              <label for="composer-language">Language</label>
              <input id="composer-language" name="language" defaultValue="en_US" required />
            </>
          )}
          {params.map((p, i) => (
            <div key={i} class="param">
              <label for={`composer-param-${i}`}>{meta ? `Parameter ${i + 1}` : `Variable ${i + 1}`}</label>
              <input
                id={`composer-param-${i}`}
                value={p}
                onInput={(e) => setParams(params.map((x, j) => (j === i ? (e.currentTarget as HTMLInputElement).value : x)))}
              />
            </div>
          ))}
          <div class="actions">
            <button type="button" class="secondary small" onClick={() => setParams([...params, ""])}>
              {meta ? "Add parameter" : "Add variable"}
            </button>
            {params.length > 0 && (
              <button type="button" class="secondary small" onClick={() => setParams(params.slice(0, -1))}>
                {meta ? "Remove last parameter" : "Remove last variable"}
              </button>
            )}
          </div>
        </fieldset>
      )}
      <Alert message={error} />
      <button type="submit" aria-busy={busy}>
        Send
      </button>
    </form>
  );
}

function pendingTicks(messages: Message[], now: number): boolean {
  return messages.some(
    (m) => m.direction === "outbound" && ["queued", "sent", "delivered"].includes(m.status) && now - Date.parse(m.created_at) < TICKS_WATCH_MS,
  );
}

export function ConversationView({
  id,
  summary,
  now,
  onChanged,
}: {
  id: string;
  summary: Conversation | null;
  now: number;
  onChanged: () => void;
}) {
  const [fetched, setFetched] = useState<Conversation | null>(null);
  const [messages, setMessages] = useState<Message[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const last = useRef({ at: 0, activity: "" as string | null });
  const marked = useRef(-1);
  const heading = useRef<HTMLHeadingElement>(null);
  const log = useRef<HTMLOListElement>(null);
  const conversation = summary ?? fetched;

  useEffect(() => {
    get<Conversation>(`/v1/conversations/${encodeURIComponent(id)}`)
      .then(setFetched)
      .catch((e: unknown) => setError(errorText(e, "The conversation could not be loaded.")));
    heading.current?.focus();
  }, [id]);

  const reload = usePoll(
    async () => {
      const activity = conversation?.last_message_at ?? null;
      const stamp = Date.now();
      const due =
        messages === null ||
        activity !== last.current.activity ||
        pendingTicks(messages, stamp) ||
        stamp - last.current.at >= IDLE_REFRESH_MS;
      if (!due) return;
      try {
        const page = await get<Page<Message>>(`/v1/conversations/${encodeURIComponent(id)}/messages?limit=${MESSAGES_PAGE}`);
        last.current = { at: stamp, activity };
        setMessages(page.items.slice().reverse());
        setError(null);
      } catch (e) {
        setError(errorText(e, "Messages could not be loaded."));
      }
    },
    POLL_MS,
    [id, conversation?.last_message_at, messages === null],
  );

  // Newest at the bottom: keep the view scrolled there when new messages come in.
  const count = messages?.length ?? 0;
  useEffect(() => {
    const el = log.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [count]);

  // Opened (or written to while open, with the tab in view): mark read, and for Meta send the blue ticks.
  useEffect(() => {
    if (!conversation || !messages || conversation.unread_count === 0 || document.visibilityState !== "visible") return;
    if (marked.current === conversation.unread_count) return;
    marked.current = conversation.unread_count;
    const newestInbound = [...messages].reverse().find((m) => m.direction === "inbound");
    void (async () => {
      try {
        await api("PATCH", `/v1/conversations/${id}`, { body: { mark_read: true } });
        if (conversation.provider === "meta" && newestInbound) {
          await api("POST", `/v1/conversations/${id}/messages`, { body: { type: "read", message_id: newestInbound.id } });
        }
      } catch {
        // Read state is a courtesy: the next open tries again.
        marked.current = -1;
      }
      onChanged();
    })();
  }, [conversation?.unread_count, messages !== null]);

  const patch = async (body: Record<string, unknown>) => {
    setActionError(null);
    try {
      setFetched(await api<Conversation>("PATCH", `/v1/conversations/${id}`, { body }));
      onChanged();
    } catch (e) {
      setActionError(errorText(e, "The change could not be saved."));
    }
  };

  const label = conversation ? contactLabel(conversation) : "Conversation";
  const locked = conversation ? operatorLocked(conversation, now) : false;
  return (
    <section class="conversation" aria-labelledby="conversation-heading">
      <div class="conversation-head">
        <Link href="/inbox" class="back">
          ← All conversations
        </Link>
        <h2 id="conversation-heading" ref={heading} tabIndex={-1}>
          {label}
        </h2>
        {conversation && (
          <p class="meta">
            {conversation.contact.name && conversation.contact.phone ? `${conversation.contact.phone} · ` : ""}
            <span class={windowLeft(conversation, now) > 0 ? "ok-text" : "muted"}>{windowText(conversation, now)}</span> ·{" "}
            {botText(conversation, now)}
          </p>
        )}
        {conversation && (
          <div class="controls">
            {locked && (
              <p class="notice">
                An operator is answering: auto-replies are paused until {time(conversation.operator_lock_until)}.{" "}
                <button type="button" class="secondary small" onClick={() => patch({ release_operator_lock: true })}>
                  Release to bot
                </button>
              </p>
            )}
            <label for="bot-mode">Auto-reply here</label>
            <select
              id="bot-mode"
              value={conversation.bot_mode ?? ""}
              onChange={(e) => {
                const value = (e.currentTarget as HTMLSelectElement).value;
                void patch({ bot_mode: value || null });
              }}
            >
              <option value="">As the channel says</option>
              <option value="on">On</option>
              <option value="shadow">Shadow (suggest only)</option>
              <option value="off">Off</option>
            </select>
            <Alert message={actionError} />
          </div>
        )}
      </div>
      <Alert message={error} />
      <ol ref={log} class="messages" role="log" aria-live="polite" aria-label={`Messages with ${label}`}>
        {messages?.map((m) => (
          <Bubble key={m.id} message={m} />
        ))}
      </ol>
      {messages === null && !error && <p aria-live="polite">Loading messages…</p>}
      {conversation && (
        <Composer
          conversation={conversation}
          now={now}
          onSent={(message) => {
            setMessages((current) => [...(current ?? []).filter((m) => m.id !== message.id), message]);
            onChanged();
            reload();
          }}
        />
      )}
    </section>
  );
}
