import { defineConfig } from "@playwright/test";
import { chromiumArgs, chromiumExecutable } from "./support/browser";

// No global web servers: every spec file (or describe block) starts its own fake Commerce7 and
// Libero, on free ports, in a scratch working directory, with a fresh database and only the
// environment it is given (support/servers.ts, `useServers`). A developer's `.env` or shell
// settings never reach them.
export default defineConfig({
  testDir: "./tests",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"], ["json", { outputFile: process.env.E2E_JSON_REPORT ?? "../target/e2e-results.json" }]],
  use: {
    trace: "retain-on-failure",
    launchOptions: { executablePath: chromiumExecutable, args: chromiumArgs },
  },
});
