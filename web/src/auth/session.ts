// The signed-in user's tokens: kept in sessionStorage (gone when the tab closes; never in a cookie the API would
// accept by itself), refreshed a little before the ID token expires, shared with the rest of the app through
// `session` and its listeners.

import type { RuntimeConfig } from "../config";
import { refresh, type Tokens } from "./cognito";

const KEY = "console.session";
const REFRESH_MARGIN_MS = 2 * 60 * 1000;

export interface User {
  email: string;
  tenantId: string | null;
  admin: boolean;
}

/** The ID token's claims, for display and for hiding admin-only screens; the API checks the signature. */
export function userOf(idToken: string): User {
  const payload = idToken.split(".")[1] ?? "";
  const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "="));
  const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0));
  const claims = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
  const groups = claims["cognito:groups"];
  return {
    email: String(claims.email ?? claims["cognito:username"] ?? ""),
    tenantId: typeof claims["custom:tenant_id"] === "string" ? (claims["custom:tenant_id"] as string) : null,
    admin: Array.isArray(groups) && groups.includes("admin"),
  };
}

type Listener = () => void;

class Session {
  private tokens: Tokens | null = null;
  private pending: Promise<string> | null = null;
  private listeners = new Set<Listener>();
  config: RuntimeConfig | null = null;

  restore(config: RuntimeConfig): void {
    this.config = config;
    try {
      const saved = JSON.parse(sessionStorage.getItem(KEY) ?? "null") as Tokens | null;
      if (saved && saved.refreshToken && saved.idToken) this.tokens = saved;
    } catch {
      sessionStorage.removeItem(KEY);
    }
  }

  get user(): User | null {
    return this.tokens ? userOf(this.tokens.idToken) : null;
  }

  start(tokens: Tokens): void {
    this.tokens = tokens;
    sessionStorage.setItem(KEY, JSON.stringify(tokens));
    this.emit();
  }

  end(): void {
    this.tokens = null;
    this.pending = null;
    sessionStorage.removeItem(KEY);
    this.emit();
  }

  /** A valid ID token, refreshed first when it is about to expire; signs out when the refresh is refused. */
  async idToken(): Promise<string> {
    const tokens = this.tokens;
    if (!tokens || !this.config) throw new Error("not signed in");
    if (tokens.expiresAt - Date.now() > REFRESH_MARGIN_MS) return tokens.idToken;
    return this.renew();
  }

  /** Force a refresh (after a 401); concurrent callers share one request. */
  renew(): Promise<string> {
    const tokens = this.tokens;
    if (!tokens || !this.config) return Promise.reject(new Error("not signed in"));
    if (!this.pending) {
      this.pending = refresh(this.config, tokens.refreshToken)
        .then((fresh) => {
          this.start(fresh);
          return fresh.idToken;
        })
        .catch((error: unknown) => {
          this.end();
          throw error;
        })
        .finally(() => {
          this.pending = null;
        });
    }
    return this.pending;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(): void {
    for (const listener of this.listeners) listener();
  }
}

export const session = new Session();
