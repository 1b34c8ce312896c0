// Cognito user-pool sign-in over its public JSON API (the calls Amplify makes, without Amplify: docs/decisions.md).
// AWS: USER_SRP_AUTH, the password never leaves the browser. `make dev`: USER_PASSWORD_AUTH against the local pool
// through the gateway's /_local/cognito, because moto does not check SRP proofs (a wrong password would pass).

import type { RuntimeConfig } from "../config";
import { srpClient, type PasswordChallenge } from "./srp";

export interface Tokens {
  idToken: string;
  accessToken: string;
  refreshToken: string;
  /** Epoch milliseconds at which the ID token expires. */
  expiresAt: number;
}

export type SignInResult =
  | { kind: "signed-in"; tokens: Tokens }
  | { kind: "new-password-required"; session: string; username: string };

export class AuthError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

const MESSAGES: Record<string, string> = {
  NotAuthorizedException: "Incorrect email or password.",
  UserNotFoundException: "Incorrect email or password.",
  PasswordResetRequiredException: "Your password must be reset: ask an administrator.",
  UserNotConfirmedException: "This account is not confirmed yet.",
  InvalidPasswordException: "That password does not meet the password policy.",
  TooManyRequestsException: "Too many attempts: wait a minute and try again.",
  LimitExceededException: "Too many attempts: wait a minute and try again.",
  TooManyFailedAttemptsException: "Too many attempts: wait a minute and try again.",
};

type Json = Record<string, unknown>;

async function call(config: RuntimeConfig, target: string, body: Json): Promise<Json> {
  let response: Response;
  try {
    response = await fetch(config.cognitoEndpoint, {
      method: "POST",
      headers: {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": `AWSCognitoIdentityProviderService.${target}`,
      },
      body: JSON.stringify(body),
    });
  } catch {
    throw new AuthError("The sign-in service cannot be reached. Check your connection.", "NetworkError");
  }
  const data = (await response.json().catch(() => ({}))) as Json;
  if (!response.ok) {
    const code = String(data.__type ?? "UnknownError").split("#").pop() as string;
    const detail = code === "InvalidPasswordException" && typeof data.message === "string" ? ` ${data.message}` : "";
    throw new AuthError((MESSAGES[code] ?? "Sign-in failed. Try again.") + detail, code);
  }
  return data;
}

function tokensFrom(result: Json, refreshToken?: string): Tokens {
  const auth = result.AuthenticationResult as Json | undefined;
  if (!auth) throw new AuthError("Sign-in needs a step this console does not support (MFA?).", "UnsupportedChallenge");
  return {
    idToken: String(auth.IdToken),
    accessToken: String(auth.AccessToken),
    refreshToken: String(auth.RefreshToken ?? refreshToken ?? ""),
    expiresAt: Date.now() + Number(auth.ExpiresIn ?? 3600) * 1000,
  };
}

function outcome(result: Json, username: string): SignInResult {
  if (result.ChallengeName === "NEW_PASSWORD_REQUIRED") {
    const params = (result.ChallengeParameters ?? {}) as Json;
    return { kind: "new-password-required", session: String(result.Session), username: String(params.USERNAME ?? username) };
  }
  if (result.ChallengeName) {
    throw new AuthError(`Sign-in needs ${String(result.ChallengeName)}, which this console does not support.`, "UnsupportedChallenge");
  }
  return { kind: "signed-in", tokens: tokensFrom(result) };
}

export async function signIn(config: RuntimeConfig, email: string, password: string): Promise<SignInResult> {
  if (config.authFlow === "USER_PASSWORD_AUTH") {
    const result = await call(config, "InitiateAuth", {
      ClientId: config.clientId,
      AuthFlow: "USER_PASSWORD_AUTH",
      AuthParameters: { USERNAME: email, PASSWORD: password },
    });
    return outcome(result, email);
  }
  const srp = await srpClient(config.userPoolId);
  const started = await call(config, "InitiateAuth", {
    ClientId: config.clientId,
    AuthFlow: "USER_SRP_AUTH",
    AuthParameters: { USERNAME: email, SRP_A: srp.srpA },
  });
  if (started.ChallengeName !== "PASSWORD_VERIFIER") return outcome(started, email);
  const params = started.ChallengeParameters as unknown as PasswordChallenge;
  const claim = await srp.passwordClaim(params, password);
  const result = await call(config, "RespondToAuthChallenge", {
    ClientId: config.clientId,
    ChallengeName: "PASSWORD_VERIFIER",
    ...(started.Session ? { Session: started.Session } : {}),
    ChallengeResponses: { USERNAME: params.USER_ID_FOR_SRP, ...claim },
  });
  return outcome(result, email);
}

export async function completeNewPassword(
  config: RuntimeConfig,
  challenge: { session: string; username: string },
  newPassword: string,
): Promise<Tokens> {
  const result = await call(config, "RespondToAuthChallenge", {
    ClientId: config.clientId,
    ChallengeName: "NEW_PASSWORD_REQUIRED",
    Session: challenge.session,
    ChallengeResponses: { USERNAME: challenge.username, NEW_PASSWORD: newPassword },
  });
  const next = outcome(result, challenge.username);
  if (next.kind !== "signed-in") throw new AuthError("Choose a different password.", "InvalidPasswordException");
  return next.tokens;
}

export async function refresh(config: RuntimeConfig, refreshToken: string): Promise<Tokens> {
  const result = await call(config, "InitiateAuth", {
    ClientId: config.clientId,
    AuthFlow: "REFRESH_TOKEN_AUTH",
    AuthParameters: { REFRESH_TOKEN: refreshToken },
  });
  return tokensFrom(result, refreshToken);
}
