// The console's build: one small ES bundle + CSS, hashed names under assets/ (cached for a year by the local
// server and CloudFront), index.html and config.json never cached. `npm run dev` serves with hot reload on :5173
// and forwards the API, the local routes and config.json to a running `make dev` (PORT, default 3000).
import { defineConfig } from "vite";

const gateway = `http://127.0.0.1:${process.env.PORT ?? "3000"}`;

export default defineConfig({
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { target: "es2022", sourcemap: false, reportCompressedSize: true, assetsInlineLimit: 0 },
  server: {
    proxy: { "/v1": gateway, "/_local": gateway, "/webhooks": gateway, "/config.json": gateway },
  },
});
