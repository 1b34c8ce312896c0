// Polling that costs nothing while nobody looks: runs at once, then every `intervalMs` while the tab is visible,
// never two at a time, and again as soon as the tab becomes visible. The returned function asks for a run now
// (after a send, say). docs/console.md has what it costs.

import { useEffect, useRef } from "preact/hooks";

/** How often the inbox and the open conversation are read while the tab is visible. */
export const POLL_MS = 3000;

export function usePoll(task: () => Promise<void>, intervalMs: number, deps: unknown[]): () => void {
  const latest = useRef(task);
  latest.current = task;
  const trigger = useRef<() => void>(() => undefined);
  useEffect(() => {
    let timer: number | undefined;
    let running = false;
    let again = false;
    let stopped = false;
    const run = async (): Promise<void> => {
      if (stopped) return;
      if (running) {
        again = true;
        return;
      }
      running = true;
      window.clearTimeout(timer);
      try {
        await latest.current();
      } catch {
        // The task shows its own errors; polling goes on.
      } finally {
        running = false;
        if (again) {
          again = false;
          void run();
        } else if (!stopped && document.visibilityState === "visible") {
          timer = window.setTimeout(run, intervalMs);
        }
      }
    };
    const onVisibility = () => {
      if (document.visibilityState === "visible") void run();
      else window.clearTimeout(timer);
    };
    trigger.current = () => void run();
    document.addEventListener("visibilitychange", onVisibility);
    void run();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisibility);
    };
  }, deps);
  return () => trigger.current();
}
