import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, get } from "../api";
import { Link, navigate } from "../router";
import { humanize, time } from "../format";
import type { AutoReply, Channel } from "../types";
import { Alert, useAutoFocus } from "../ui";

function errorText(e: unknown, fallback: string): string {
  return e instanceof ApiError ? e.message : fallback;
}

/** A value to paste into the provider's console, with a button that copies it. */
function Copyable({ label, value, button }: { label: string; value: string; button: string }) {
  const [note, setNote] = useState("");
  const codeRef = useRef<HTMLElement>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setNote("Copied.");
    } catch {
      // No clipboard permission (an embedded or insecure page): select the text for Ctrl+C instead.
      const selection = getSelection();
      if (selection && codeRef.current) {
        selection.selectAllChildren(codeRef.current);
        setNote("Selected: press Ctrl+C to copy.");
      }
    }
  };
  return (
    <div class="copyable">
      <dt>{label}</dt>
      <dd>
        <code ref={codeRef}>{value}</code>
        <button type="button" class="secondary small" onClick={copy}>
          {button}
        </button>
        <span class="note" role="status">
          {note}
        </span>
      </dd>
    </div>
  );
}

/** A health detail for reading: {"level": "STANDARD"} → "level STANDARD". */
function flat(value: unknown): string {
  if (value === null || typeof value !== "object") return String(value);
  return Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => `${k.replace(/_/g, " ")} ${flat(v)}`)
    .join(", ");
}

function HealthCheck({ channel }: { channel: Channel }) {
  const [result, setResult] = useState<{ ok: boolean; text: string; details: [string, string][] } | null>(null);
  const [busy, setBusy] = useState(false);
  const check = async () => {
    setBusy(true);
    setResult(null);
    try {
      const r = await api<{ ok: boolean; checked_at: string; details: Record<string, unknown> }>(
        "POST",
        `/v1/channels/${channel.id}/check`,
      );
      const details = Object.entries(r.details ?? {}).map(([k, v]) => [humanize(k), flat(v)] as [string, string]);
      setResult({ ok: r.ok, text: r.ok ? `Healthy: the provider accepted the credentials (${time(r.checked_at)}).` : "Not healthy.", details });
    } catch (e) {
      setResult({ ok: false, text: `Check failed: ${errorText(e, "the provider could not be reached.")}`, details: [] });
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="card" aria-labelledby="health-heading">
      <h2 id="health-heading">Health</h2>
      <p>Asks {channel.provider === "twilio" ? "Twilio" : "Meta"} whether the credentials and the number work.</p>
      <button type="button" onClick={check} aria-busy={busy}>
        Check
      </button>
      <div role="status" class="health">
        {busy && "Checking…"}
        {result && (
          <>
            <p class={result.ok ? "ok-text" : "error"}>{result.text}</p>
            {result.details.length > 0 && (
              <dl class="details">
                {result.details.map(([k, v]) => (
                  <div key={k}>
                    <dt>{k}</dt>
                    <dd>{v}</dd>
                  </div>
                ))}
              </dl>
            )}
          </>
        )}
      </div>
    </section>
  );
}

const EMPTY_AUTO_REPLY: AutoReply = { mode: "off", rules: [], fallback: null, unsupported_notice: null, operator_lock_minutes: 30 };

interface RuleRow {
  key: number;
  keywords: string;
  reply: string;
}

function AutoReplySettings({ channel, onSaved }: { channel: Channel; onSaved: (c: Channel) => void }) {
  const current = channel.auto_reply ?? EMPTY_AUTO_REPLY;
  const nextKey = useRef(0);
  const row = (keywords: string, reply: string): RuleRow => ({ key: nextKey.current++, keywords, reply });
  const [rules, setRules] = useState<RuleRow[]>(() => current.rules.map((r) => row(r.keywords.join(", "), r.reply)));
  const [mode, setMode] = useState<AutoReply["mode"]>(current.mode);
  const [status, setStatus] = useState<{ error: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);

  const onSubmit = async (event: Event) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const text = (name: string) => {
      const value = String(data.get(name) ?? "").trim();
      return value ? value : null;
    };
    const autoReply: AutoReply = {
      mode,
      rules: rules
        .map((r) => ({ keywords: r.keywords.split(",").map((k) => k.trim()).filter(Boolean), reply: r.reply.trim() }))
        .filter((r) => r.keywords.length || r.reply),
      fallback: text("fallback"),
      unsupported_notice: text("unsupported_notice"),
      operator_lock_minutes: Number(data.get("operator_lock_minutes") || 30),
    };
    setBusy(true);
    setStatus(null);
    try {
      const saved = await api<Channel>("PATCH", `/v1/channels/${channel.id}`, { body: { auto_reply: autoReply } });
      onSaved(saved);
      setStatus({ error: false, text: "Auto-reply settings saved." });
    } catch (e) {
      setStatus({ error: true, text: errorText(e, "The settings could not be saved.") });
    } finally {
      setBusy(false);
    }
  };

  const update = (key: number, change: Partial<RuleRow>) =>
    setRules(rules.map((r) => (r.key === key ? { ...r, ...change } : r)));

  return (
    <form class="card" onSubmit={onSubmit} aria-labelledby="auto-reply-heading">
      <h2 id="auto-reply-heading">Auto-reply</h2>
      <label for="auto-mode">Mode</label>
      <select
        id="auto-mode"
        name="mode"
        value={mode}
        onChange={(e) => setMode((e.currentTarget as HTMLSelectElement).value as AutoReply["mode"])}
        aria-describedby="auto-mode-hint"
      >
        <option value="off">Off</option>
        <option value="on">On: answer automatically</option>
        <option value="shadow">Shadow: suggest, do not send</option>
      </select>
      <p id="auto-mode-hint" class="hint">
        A rule answers when one of its keywords appears in the message as a whole word; the first match wins, else the
        fallback.
      </p>
      <fieldset>
        <legend>Rules</legend>
        {rules.length === 0 && <p class="hint">No rules yet.</p>}
        <ol class="rules">
          {rules.map((r, i) => (
            <li key={r.key}>
              <label for={`rule-${r.key}-keywords`}>Keywords of rule {i + 1}</label>
              <input
                id={`rule-${r.key}-keywords`}
                value={r.keywords}
                placeholder="price, cost"
                onInput={(e) => update(r.key, { keywords: (e.currentTarget as HTMLInputElement).value })}
              />
              <label for={`rule-${r.key}-reply`}>Reply of rule {i + 1}</label>
              <textarea
                id={`rule-${r.key}-reply`}
                value={r.reply}
                rows={2}
                onInput={(e) => update(r.key, { reply: (e.currentTarget as HTMLTextAreaElement).value })}
              />
              <button type="button" class="secondary small" onClick={() => setRules(rules.filter((x) => x.key !== r.key))}>
                Remove rule {i + 1}
              </button>
            </li>
          ))}
        </ol>
        <button type="button" class="secondary" onClick={() => setRules([...rules, row("", "")])}>
          Add rule
        </button>
      </fieldset>
      <label for="auto-fallback">Fallback reply</label>
      <textarea id="auto-fallback" name="fallback" rows={2} defaultValue={current.fallback ?? ""} />
      <label for="auto-unsupported">Reply to content the gateway cannot handle</label>
      <textarea id="auto-unsupported" name="unsupported_notice" rows={2} defaultValue={current.unsupported_notice ?? ""} />
      <label for="auto-lock">Operator lock (minutes)</label>
      <input
        id="auto-lock"
        name="operator_lock_minutes"
        type="number"
        min={1}
        max={1440}
        defaultValue={String(current.operator_lock_minutes)}
        aria-describedby="auto-lock-hint"
      />
      <p id="auto-lock-hint" class="hint">
        After an operator sends a message, auto-replies pause in that conversation for this long.
      </p>
      {status && (
        <p role={status.error ? "alert" : "status"} class={status.error ? "error" : "ok-text"}>
          {status.text}
        </p>
      )}
      <button type="submit" aria-busy={busy}>
        Save auto-reply
      </button>
    </form>
  );
}

function ConfirmButton({ onClick, children }: { onClick: () => void; children: ComponentChildren }) {
  const ref = useAutoFocus<HTMLButtonElement>();
  return (
    <button ref={ref} type="button" class="danger" onClick={onClick}>
      {children}
    </button>
  );
}

function Disable({ channel }: { channel: Channel }) {
  const [asking, setAsking] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const disable = async () => {
    try {
      await api<void>("DELETE", `/v1/channels/${channel.id}`);
      navigate("/channels");
    } catch (e) {
      setError(errorText(e, "The channel could not be disabled."));
    }
  };
  return (
    <section class="card danger" aria-labelledby="disable-heading">
      <h2 id="disable-heading">Disable</h2>
      <p>A disabled channel stops receiving: its webhooks answer as unknown, and nothing can be sent through it.</p>
      {asking ? (
        <div class="actions" role="group" aria-label="Confirm disabling">
          <ConfirmButton onClick={disable}>Yes, disable {channel.name}</ConfirmButton>
          <button type="button" class="secondary" onClick={() => setAsking(false)}>
            Keep it
          </button>
        </div>
      ) : (
        <button type="button" class="danger" onClick={() => setAsking(true)}>
          Disable channel
        </button>
      )}
      <Alert message={error} />
    </section>
  );
}

export function ChannelDetail({ id, admin }: { id: string; admin: boolean }) {
  const [channel, setChannel] = useState<Channel | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!admin) return;
    setChannel(null);
    get<Channel>(`/v1/channels/${encodeURIComponent(id)}`)
      .then(setChannel)
      .catch((e: unknown) => setError(errorText(e, "The channel could not be loaded.")));
  }, [id, admin]);

  useEffect(() => {
    if (channel) document.querySelector<HTMLElement>("main h1")?.focus();
  }, [channel?.id]);

  if (!admin) {
    return (
      <section class="page">
        <h1 tabIndex={-1}>Channel</h1>
        <p>Only administrators can see channel settings.</p>
      </section>
    );
  }
  if (!channel) {
    return (
      <section class="page">
        <p>
          <Link href="/channels">← Channels</Link>
        </p>
        {error ? (
          <>
            <h1 tabIndex={-1}>Channel</h1>
            <Alert message={error} />
          </>
        ) : (
          <p aria-live="polite">Loading the channel…</p>
        )}
      </section>
    );
  }
  const twilio = channel.provider === "twilio";
  return (
    <section class="page">
      <p>
        <Link href="/channels">← Channels</Link>
      </p>
      <h1 tabIndex={-1}>{channel.name}</h1>
      <p class="meta">
        {twilio ? "Twilio" : "Meta"} · {channel.phone_number} · <span class="badge">{channel.status}</span>
      </p>
      <section class="card" aria-labelledby="setup-heading">
        <h2 id="setup-heading">Provider setup</h2>
        <p>
          {twilio
            ? "In the Twilio console, set the sender's “When a message comes in” URL and its Fallback URL to the webhook URL (POST). Status callbacks need no setup."
            : "In the Meta app dashboard (WhatsApp → Configuration), enter the webhook URL as the Callback URL and the verify token, then subscribe to the messages field."}
        </p>
        <dl class="setup">
          <Copyable label="Webhook URL" value={channel.webhook_url} button="Copy webhook URL" />
          {twilio && channel.status_callback_url && (
            <Copyable label="Status callback URL" value={channel.status_callback_url} button="Copy status callback URL" />
          )}
          {!twilio && channel.verify_token && (
            <Copyable label="Verify token" value={channel.verify_token} button="Copy verify token" />
          )}
        </dl>
        <dl class="details">
          {twilio ? (
            <div>
              <dt>Account SID</dt>
              <dd>{channel.account_sid}</dd>
            </div>
          ) : (
            <>
              <div>
                <dt>Phone number ID</dt>
                <dd>{channel.phone_number_id}</dd>
              </div>
              <div>
                <dt>WhatsApp Business Account ID</dt>
                <dd>{channel.business_account_id}</dd>
              </div>
              <div>
                <dt>Webhook verified</dt>
                <dd>{channel.webhook_verified_at ? time(channel.webhook_verified_at) : "not yet"}</dd>
              </div>
            </>
          )}
          {Object.entries(channel.credentials ?? {}).map(([k, v]) => (
            <div key={k}>
              <dt>{humanize(k)}</dt>
              <dd>{v}</dd>
            </div>
          ))}
        </dl>
      </section>
      <HealthCheck channel={channel} />
      <AutoReplySettings key={channel.id} channel={channel} onSaved={setChannel} />
      {channel.status === "active" && <Disable channel={channel} />}
    </section>
  );
}
