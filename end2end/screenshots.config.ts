import { defineConfig } from "@playwright/test";
import { chromiumArgs, chromiumExecutable } from "./support/browser";

// The README's screenshots (`make screenshots`, scripts/screenshots.sh). Not part of `make test`:
// the test suite's config has its own testDir.
export default defineConfig({
  testDir: "./screenshots",
  timeout: 120_000,
  expect: { timeout: 30_000 },
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  use: { launchOptions: { executablePath: chromiumExecutable, args: chromiumArgs } },
});
