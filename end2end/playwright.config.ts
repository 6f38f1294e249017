import { defineConfig } from "@playwright/test";
import { existsSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";

// Debian's Chromium on these machines (never a browser download); Playwright's own elsewhere.
const chromium = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const executablePath = existsSync(chromium) ? chromium : undefined;

export const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
];
export const chromiumExecutable = executablePath;

const root = resolve(__dirname, "..");
const tmp = resolve(__dirname, ".tmp");
mkdirSync(tmp, { recursive: true });

export const APP_PORT = Number(process.env.E2E_APP_PORT ?? 3900);
// The app is served on 127.0.0.1; the Commerce7 admin simulator on localhost (another site).
export const APP_URL = `http://127.0.0.1:${APP_PORT}`;
export const C7_PORT = Number(process.env.E2E_C7_PORT ?? 4011);
export const ADMIN_URL = `http://localhost:${C7_PORT}`;
const CALLBACK_USER = "e2e-callbacks";
const CALLBACK_PASSWORD = "e2e-callback-password";

export default defineConfig({
  testDir: "./tests",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  use: {
    baseURL: APP_URL,
    trace: "retain-on-failure",
    launchOptions: { executablePath, args: chromiumArgs },
  },
  webServer: [
    {
      // The fake Commerce7: account API, callbacks, and the admin simulator on another site.
      command: `${root}/target/debug/fake-commerce7`,
      cwd: tmp,
      url: `http://127.0.0.1:${C7_PORT}/healthz`,
      reuseExistingServer: false,
      timeout: 30_000,
      stdout: "ignore",
      stderr: "pipe",
      env: {
        FAKE_C7_ADDR: `127.0.0.1:${C7_PORT}`,
        FAKE_C7_APP_URL: APP_URL,
        COMMERCE7_USER: CALLBACK_USER,
        COMMERCE7_PASSWORD: CALLBACK_PASSWORD,
      },
    },
    {
      command: `${root}/target/debug/libero serve`,
      cwd: root,
      url: `${APP_URL}/readyz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: "ignore",
      stderr: "pipe",
      env: {
        LEPTOS_OUTPUT_NAME: "libero",
        LEPTOS_SITE_ROOT: "target/site",
        LEPTOS_SITE_PKG_DIR: "pkg",
        LEPTOS_SITE_ADDR: `127.0.0.1:${APP_PORT}`,
        LEPTOS_ENV: "DEV",
        SESSION_SECRET: "e2e-secret-0123456789abcdef0123456789abcdef",
        DATABASE_URL: `sqlite://${tmp}/e2e-${Date.now()}.db`,
        COOKIE_SECURE: "true",
        COMMERCE7_API_URL: `http://127.0.0.1:${C7_PORT}/v1`,
        COMMERCE7_USER: CALLBACK_USER,
        COMMERCE7_PASSWORD: CALLBACK_PASSWORD,
        FRAME_ANCESTORS: ADMIN_URL,
        SESSION_TOUCH_INTERVAL: "0",
        RUST_LOG: "info",
      },
    },
  ],
});
