import { render, type ComponentChild } from "preact";
import { App } from "./app";
import { session } from "./auth/session";
import { loadConfig } from "./config";
import "./styles.css";

const root = document.getElementById("app") as HTMLElement;

function show(content: ComponentChild): void {
  root.textContent = ""; // index.html's "Loading…" placeholder is not Preact's to replace
  render(content, root);
}

loadConfig()
  .then((config) => {
    session.restore(config);
    show(<App config={config} />);
  })
  .catch((error: unknown) => {
    show(
      <main class="centered">
        <h1>The console cannot start</h1>
        <p role="alert">{error instanceof Error ? error.message : String(error)}</p>
      </main>,
    );
  });
