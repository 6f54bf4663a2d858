import { defineConfig } from "vitest/config";

// Served by dbaas-server under /console/ (crates/server/src/console.rs).
// `npm run dev` proxies the API to DBAAS_SERVER (default http://127.0.0.1:8443).
export default defineConfig({
  base: "/console/",
  build: { outDir: "dist", sourcemap: false, chunkSizeWarningLimit: 400 },
  server: {
    proxy: { "/v1": process.env.DBAAS_SERVER ?? "http://127.0.0.1:8443" },
  },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
