import { existsSync } from "node:fs";

// Debian's Chromium on these machines (never a browser download); Playwright's own elsewhere.
const chromium = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** The Chromium to drive, or undefined for Playwright's own browser. */
export const chromiumExecutable: string | undefined = existsSync(chromium) ? chromium : undefined;

export const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
];
