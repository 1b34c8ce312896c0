import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, get } from "../api";
import { Link, navigate } from "../router";
import type { Channel, Page } from "../types";
import { Alert } from "../ui";

type Provider = "twilio" | "meta";

interface FieldSpec {
  name: string;
  label: string;
  hint?: string;
  secret?: boolean;
  optional?: boolean;
  placeholder?: string;
  inputMode?: "tel" | "numeric" | "text";
}

const FIELDS: Record<Provider, FieldSpec[]> = {
  twilio: [
    { name: "phone_number", label: "Phone number", placeholder: "+14155238886", inputMode: "tel",
      hint: "Your Twilio WhatsApp sender, in E.164 form (+ and digits)." },
    { name: "account_sid", label: "Account SID", placeholder: "AC…", hint: "Twilio console → Account info." },
    { name: "auth_token", label: "Auth token", secret: true, hint: "Stored encrypted; never shown again." },
    { name: "messaging_service_sid", label: "Messaging service SID", placeholder: "MG…", optional: true,
      hint: "Only if you send through a messaging service." },
  ],
  meta: [
    { name: "phone_number_id", label: "Phone number ID", inputMode: "numeric", hint: "WhatsApp → API Setup." },
    { name: "business_account_id", label: "WhatsApp Business Account ID", inputMode: "numeric" },
    { name: "display_phone_number", label: "Display phone number", placeholder: "+15550783881", inputMode: "tel" },
    { name: "access_token", label: "Access token", secret: true,
      hint: "A system user token with whatsapp_business_messaging; stored encrypted, never shown again." },
    { name: "app_secret", label: "App secret", secret: true, optional: true,
      hint: "App settings → Basic. Leave empty if the deployment has a global Meta app secret." },
  ],
};

function ConnectForm({ onCancel }: { onCancel: () => void }) {
  const [provider, setProvider] = useState<Provider>("twilio");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const formRef = useRef<HTMLFormElement>(null);

  useEffect(() => {
    formRef.current?.querySelector<HTMLInputElement>("input[type=radio]:checked")?.focus();
  }, []);

  const onSubmit = async (event: Event) => {
    event.preventDefault();
    if (busy) return;
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    const body: Record<string, string> = { provider, name: String(data.get("name")).trim() };
    for (const field of FIELDS[provider]) {
      const value = String(data.get(field.name) ?? "").trim();
      if (value || !field.optional) body[field.name] = value;
    }
    setBusy(true);
    setError(null);
    try {
      const channel = await api<Channel>("POST", "/v1/channels", { body });
      form.reset(); // the secrets typed go with the form: nothing on the page holds them any more
      navigate(`/channels/${channel.id}`);
    } catch (e) {
      setError(e instanceof ApiError ? e.message : "The channel could not be connected.");
    } finally {
      setBusy(false);
    }
  };

  return (
    <form ref={formRef} class="card connect" onSubmit={onSubmit} aria-labelledby="connect-heading" autocomplete="off">
      <h2 id="connect-heading">Connect a WhatsApp number</h2>
      <fieldset role="radiogroup" aria-labelledby="provider-legend">
        <legend id="provider-legend">Provider</legend>
        <div class="choices">
          {(["twilio", "meta"] as const).map((p) => (
            <label key={p} class="choice">
              <input
                type="radio"
                name="provider"
                value={p}
                checked={provider === p}
                onChange={() => {
                  setProvider(p);
                  setError(null);
                }}
              />
              {p === "twilio" ? "Twilio" : "Meta"}
            </label>
          ))}
        </div>
      </fieldset>
      <label for="channel-name">Name</label>
      <input id="channel-name" name="name" required maxLength={100} placeholder="Main" />
      {FIELDS[provider].map((field) => (
        <div key={`${provider}-${field.name}`} class="field">
          <label for={`channel-${field.name}`}>{field.label}</label>
          <input
            id={`channel-${field.name}`}
            name={field.name}
            type={field.secret ? "password" : "text"}
            autocomplete={field.secret ? "new-password" : "off"}
            spellcheck={false}
            required={!field.optional}
            placeholder={field.placeholder}
            inputMode={field.inputMode}
            aria-describedby={field.hint || field.optional ? `channel-${field.name}-hint` : undefined}
          />
          {(field.hint || field.optional) && (
            <p id={`channel-${field.name}-hint`} class="hint">
              {field.optional && <span class="optional">Optional. </span>}
              {field.hint}
            </p>
          )}
        </div>
      ))}
      <Alert message={error} />
      <div class="actions">
        <button type="submit" aria-busy={busy}>
          Connect
        </button>
        <button type="button" class="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

export function Channels({ admin }: { admin: boolean }) {
  const [channels, setChannels] = useState<Channel[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [connecting, setConnecting] = useState(false);
  const toggle = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (!admin) return;
    get<Page<Channel>>("/v1/channels")
      .then((page) => setChannels(page.items))
      .catch((e: unknown) => setError(e instanceof ApiError ? e.message : "Channels could not be loaded."));
  }, [admin]);

  if (!admin) {
    return (
      <section class="page">
        <h1 tabIndex={-1}>Channels</h1>
        <p>Only administrators of your organisation can connect and configure WhatsApp numbers.</p>
      </section>
    );
  }

  return (
    <section class="page">
      <div class="page-head">
        <h1 tabIndex={-1}>Channels</h1>
        <button
          ref={toggle}
          type="button"
          aria-expanded={connecting}
          aria-controls="connect-form"
          onClick={() => setConnecting(!connecting)}
        >
          Connect channel
        </button>
      </div>
      <div id="connect-form">
        {connecting && (
          <ConnectForm
            onCancel={() => {
              setConnecting(false);
              toggle.current?.focus();
            }}
          />
        )}
      </div>
      <Alert message={error} />
      {channels === null && !error && <p aria-live="polite">Loading channels…</p>}
      {channels?.length === 0 && <p>No WhatsApp number is connected yet. Connect one to start receiving messages.</p>}
      {!!channels?.length && (
        <ul class="list" aria-label="Connected channels">
          {channels.map((c) => (
            <li key={c.id} class="row">
              <div>
                <Link href={`/channels/${c.id}`}>{c.name}</Link>
                <div class="meta">
                  {c.provider === "twilio" ? "Twilio" : "Meta"} · {c.phone_number}
                </div>
              </div>
              <span class={`badge ${c.status === "active" ? "ok" : "muted"}`}>{c.status}</span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
