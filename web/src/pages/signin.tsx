import { useState } from "preact/hooks";
import { AuthError, completeNewPassword, signIn } from "../auth/cognito";
import { session } from "../auth/session";
import type { RuntimeConfig } from "../config";
import { Alert, useAutoFocus } from "../ui";

function NewPasswordInput() {
  const ref = useAutoFocus<HTMLInputElement>();
  return <input ref={ref} id="new-password" name="new-password" type="password" autocomplete="new-password" required />;
}

function EmailInput() {
  const ref = useAutoFocus<HTMLInputElement>();
  return <input ref={ref} id="email" name="email" type="email" autocomplete="username" required />;
}

function message(error: unknown): string {
  return error instanceof AuthError ? error.message : "Sign-in failed. Try again.";
}

export function SignIn({ config }: { config: RuntimeConfig }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [challenge, setChallenge] = useState<{ session: string; username: string } | null>(null);

  const onSignIn = async (event: Event) => {
    event.preventDefault();
    if (busy) return;
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    setBusy(true);
    setError(null);
    const password = form.elements.namedItem("password") as HTMLInputElement;
    try {
      const result = await signIn(config, String(data.get("email")).trim(), password.value);
      password.value = "";
      if (result.kind === "signed-in") session.start(result.tokens);
      else setChallenge(result);
    } catch (e) {
      setError(message(e));
      password.value = ""; // typed again, never kept in the page
      password.focus();
    } finally {
      setBusy(false);
    }
  };

  const onNewPassword = async (event: Event) => {
    event.preventDefault();
    if (busy || !challenge) return;
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const password = String(data.get("new-password"));
    if (password !== String(data.get("confirm-password"))) {
      setError("The two passwords differ.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      session.start(await completeNewPassword(config, challenge, password));
    } catch (e) {
      setError(message(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main id="main" class="centered">
      <div class="card signin">
        <p class="brand">WhatsApp Gateway</p>
        {challenge ? (
          <form onSubmit={onNewPassword} aria-describedby="new-password-help">
            <h1 tabIndex={-1}>Choose a new password</h1>
            <p id="new-password-help">Your administrator gave you a temporary password. Choose your own to continue.</p>
            <label for="new-password">New password</label>
            <NewPasswordInput />
            <label for="confirm-password">Confirm new password</label>
            <input id="confirm-password" name="confirm-password" type="password" autocomplete="new-password" required />
            <Alert message={error} />
            <button type="submit" aria-busy={busy}>
              Set password
            </button>
          </form>
        ) : (
          <form onSubmit={onSignIn}>
            <h1 tabIndex={-1}>Sign in</h1>
            <label for="email">Email</label>
            <EmailInput />
            <label for="password">Password</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required />
            <Alert message={error} />
            <button type="submit" aria-busy={busy}>
              Sign in
            </button>
          </form>
        )}
        {config.stage === "local" && (
          <p class="hint">
            Local stack: <code>make dev</code> printed a demo login.
          </p>
        )}
      </div>
    </main>
  );
}
