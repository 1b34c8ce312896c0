import { useEffect, useRef } from "preact/hooks";

// Small pieces every screen uses.

/** An error the user must notice: announced at once by screen readers (role=alert); nothing when null. */
export function Alert({ message }: { message: string | null }) {
  return message ? (
    <p role="alert" class="error">
      {message}
    </p>
  ) : null;
}

/** A ref that takes the keyboard focus when its element appears (the `autofocus` attribute does nothing for
 * elements a script inserts). */
export function useAutoFocus<T extends HTMLElement>() {
  const ref = useRef<T>(null);
  useEffect(() => ref.current?.focus(), []);
  return ref;
}
