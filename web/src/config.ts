// Runtime configuration, read from /config.json next to index.html: written at deploy time in AWS
// (local/publish_console.py) and served by the local gateway in `make dev`. Never baked into the bundle, so one
// build serves every stage.

export type AuthFlow = "USER_SRP_AUTH" | "USER_PASSWORD_AUTH";

export interface RuntimeConfig {
  region: string;
  userPoolId: string;
  clientId: string;
  /** Base URL of the HTTP API, without a trailing slash; "" = same origin. */
  apiUrl: string;
  authFlow: AuthFlow;
  /** Cognito's JSON API endpoint (AWS: https://cognito-idp.<region>.amazonaws.com/). */
  cognitoEndpoint: string;
  stage: string;
}

export class ConfigError extends Error {}

function field(raw: Record<string, unknown>, name: string, fallback?: string): string {
  const value = raw[name] ?? fallback;
  if (typeof value !== "string") throw new ConfigError(`config.json has no "${name}".`);
  return value;
}

export function parseConfig(raw: unknown): RuntimeConfig {
  if (typeof raw !== "object" || raw === null) throw new ConfigError("config.json is not a JSON object.");
  const r = raw as Record<string, unknown>;
  const region = field(r, "region");
  const authFlow = field(r, "auth_flow", "USER_SRP_AUTH");
  if (authFlow !== "USER_SRP_AUTH" && authFlow !== "USER_PASSWORD_AUTH") {
    throw new ConfigError(`config.json: auth_flow ${authFlow} is not supported.`);
  }
  return {
    region,
    userPoolId: field(r, "user_pool_id"),
    clientId: field(r, "client_id"),
    apiUrl: field(r, "api_url", "").replace(/\/+$/, ""),
    authFlow,
    cognitoEndpoint: field(r, "cognito_endpoint", `https://cognito-idp.${region}.amazonaws.com/`),
    stage: field(r, "stage", ""),
  };
}

export async function loadConfig(): Promise<RuntimeConfig> {
  const response = await fetch("/config.json", { cache: "no-store", headers: { Accept: "application/json" } });
  const type = response.headers.get("content-type") ?? "";
  if (!response.ok || !type.includes("json")) {
    throw new ConfigError("This deployment has no console configuration (config.json) yet.");
  }
  return parseConfig(await response.json());
}
