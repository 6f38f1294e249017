import { test } from "@playwright/test";
import { useServers } from "../support/servers";
useServers("debug");
test("debug", async ({ page }) => {
  page.on("console", (m) => console.log("console", m.type(), m.text()));
  page.on("pageerror", (e) => console.log("pageerror", e.message));
  page.on("requestfailed", (r) => console.log("requestfailed", r.url(), r.failure()?.errorText));
  page.on("response", (r) => console.log("response", r.status(), r.url()));
  await page.goto("/");
  await page.waitForTimeout(5000);
  console.log(await page.locator("body").getAttribute("data-hydrated"));
});
