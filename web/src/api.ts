// The /v1 API with the user's ID token as `Authorization: Bearer`. A 401 refreshes the token once and retries;
// errors carry the API's `{"error": {"code", "message"}}`.

import { session } from "./auth/session";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Options {
  body?: unknown;
  idempotencyKey?: string;
}

async function send(method: string, path: string, token: string, options: Options): Promise<Response> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
  const base = session.config?.apiUrl ?? "";
  return fetch(`${base}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
}

export async function api<T>(method: string, path: string, options: Options = {}): Promise<T> {
  let response: Response;
  try {
    response = await send(method, path, await session.idToken(), options);
    if (response.status === 401) response = await send(method, path, await session.renew(), options);
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new ApiError(0, "network_error", "The gateway cannot be reached. Retrying…");
  }
  if (response.status === 204) return undefined as T;
  const data = (await response.json().catch(() => null)) as
    | (T & { error?: { code?: string; message?: string }; message?: string })
    | null;
  if (!response.ok) {
    const code = data?.error?.code ?? (response.status === 404 ? "not_found" : "error");
    const message = data?.error?.message ?? data?.message ?? `The gateway answered ${response.status}.`;
    throw new ApiError(response.status, code, message);
  }
  return data as T;
}

export const get = <T>(path: string) => api<T>("GET", path);
