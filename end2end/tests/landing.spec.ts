import { expect, test } from "@playwright/test";

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
  await page.goto("/");
  await page.getByRole("button", { name: "Show the details" }).click();
  // Give a would-be handler ample time to react before asserting that nothing changed.
  await page.waitForTimeout(500);
  await expect(page.locator("#how-it-works")).toBeHidden();
  await expect(page.locator("body")).not.toHaveAttribute("data-hydrated", "true");
});

test("an unknown address shows the 404 page with status 404", async ({ page }) => {
  const response = await page.goto("/nowhere");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
});
