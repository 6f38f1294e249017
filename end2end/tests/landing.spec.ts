import { expect, test } from "@playwright/test";
import { useServers } from "../support/servers";

// This file's own Libero and fake Commerce7 (fresh database); `baseURL` is the app.
useServers("landing");

test("the landing page is rendered by the server", async ({ page }) => {
  const response = await page.goto("/");
  expect(response?.status()).toBe(200);
  await expect(page.getByRole("heading", { level: 1 })).toHaveText("Libero for Commerce7");
  await expect(page.getByText("Open Libero from your Commerce7 admin.")).toBeVisible();
});

test("the details toggle works once the page has hydrated", async ({ page }) => {
  await page.goto("/");
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const toggle = page.getByRole("button", { name: "Show the details" });
  await expect(page.locator("#how-it-works")).toBeHidden();
  await toggle.click();
  await expect(page.locator("#how-it-works")).toBeVisible();
  await expect(page.getByRole("button", { name: "Hide the details" })).toHaveAttribute("aria-expanded", "true");
});

test("without the wasm bundle the same click does nothing (the toggle needs hydration)", async ({ page }) => {
  await page.route("**/*.wasm", (route) => route.abort());
  // Once the wasm request has failed the page can never hydrate: nothing left to wait for.
  const wasmFailed = page.waitForEvent("requestfailed", (request) => request.url().endsWith(".wasm"));
  await page.goto("/");
  await wasmFailed;
  await page.getByRole("button", { name: "Show the details" }).click();
  // A hydrated handler reacts within the click's task and renders by the next frame; wait for
  // two frames to pass, then check that nothing changed.
  await page.evaluate(() => new Promise<void>((done) => requestAnimationFrame(() => requestAnimationFrame(() => done()))));
  await expect(page.locator("#how-it-works")).toBeHidden();
  await expect(page.getByRole("button", { name: "Show the details" })).toHaveAttribute("aria-expanded", "false");
  await expect(page.locator("body")).not.toHaveAttribute("data-hydrated", "true");
});

test("an unknown address shows the 404 page with status 404", async ({ page }) => {
  const response = await page.goto("/nowhere");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
});
