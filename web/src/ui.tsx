// Small pieces every screen uses.

/** An error the user must notice: announced at once by screen readers (role=alert); nothing when null. */
export function Alert({ message }: { message: string | null }) {
  return message ? (
    <p role="alert" class="error">
      {message}
    </p>
  ) : null;
}
