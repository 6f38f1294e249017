import { defineConfig } from "@playwright/test";

// The browser timings of `make bench` (scripts/bench.py runs `npx playwright test -c bench.config.ts`
// against release binaries). Not part of `make test`: the test suite's config has its own testDir.
export default defineConfig({
  testDir: "./bench",
  timeout: 600_000,
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
});
