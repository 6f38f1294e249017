import { type BrowserContext, type Page, chromium, expect, test } from "@playwright/test";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromiumArgs, chromiumExecutable } from "../support/browser";
import { type Servers, useServers } from "../support/servers";

// The whole merchant flow inside the Commerce7 admin simulator: the admin page is served from
// http://localhost:PORT, the app from http://127.0.0.1:PORT, so the app is a cross-site iframe and
// its session cookie is a third-party cookie.
//
// Every test below runs in its own (anonymous) describe block with its own Libero, fake Commerce7
// and fresh database: each starts from a clean install and asserts exact values.

type CookieMode = "default" | "allowed" | "blocked";

async function openContext(mode: CookieMode): Promise<{ context: BrowserContext; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), `libero-e2e-${mode}-`));
  if (mode !== "default") {
    // Chromium's own setting: 0 = allow third-party cookies, 1 = block them.
    mkdirSync(join(dir, "Default"), { recursive: true });
    writeFileSync(
      join(dir, "Default", "Preferences"),
      JSON.stringify({ profile: { cookie_controls_mode: mode === "allowed" ? 0 : 1 } }),
    );
  }
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: chromiumExecutable,
    args: chromiumArgs,
    headless: true,
  });
  return { context, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Whether an unpartitioned third-party cookie survives in this browser (the control probe). */
async function thirdPartyCookiesAllowed(page: Page, servers: Servers): Promise<boolean> {
  const control = page.frames().find((f) => f.url().includes("/control/"));
  if (!control) throw new Error("the admin page has no control frame");
  await control.goto(`${servers.c7Url}/control/check`);
  const body = JSON.parse(await control.locator("body").innerText());
  return body.controlCookie === true;
}

async function installTenant(page: Page, servers: Servers, tenant: string) {
  await page.goto(`${servers.adminUrl}/`);
  await page.locator("section.tenant", { hasText: `(${tenant})` }).getByRole("button", { name: "Install Libero", exact: true }).click();
  await expect(page.getByText(`Install callback for ${tenant}`)).toContainText("200");
}

for (const mode of ["default", "allowed", "blocked"] as CookieMode[]) {
  test.describe(() => {
    const servers = useServers(`cookies-${mode}`);

    test(`the merchant flow works inside the cross-site iframe (third-party cookies: ${mode})`, async () => {
      const { appUrl, adminUrl } = servers();
      const { context, cleanup } = await openContext(mode);
      try {
        const page = context.pages()[0] ?? (await context.newPage());
        await installTenant(page, servers(), "demo-winery");

        // Sign-in: Commerce7 opens the iframe with tenantId + account.
        await page.goto(`${adminUrl}/`);
        await page.getByRole("link", { name: "Open as Dana Owner (dark theme)" }).click();
        const app = page.frameLocator("#app-frame");
        await expect(app.getByRole("heading", { name: "Welcome, Dana Owner" })).toBeVisible();
        await expect(app.getByTestId("tenant")).toHaveText("demo-winery");
        await expect(app.locator("body")).toHaveClass(/theme-dark/);

        // Prove which cookie mode this browser is in.
        const allowed = await thirdPartyCookiesAllowed(page, servers());
        if (mode === "allowed") expect(allowed).toBe(true);
        if (mode === "blocked") expect(allowed).toBe(false);

        // The account token does not stay in the iframe's URL.
        const frame = page.frame({ url: (u) => u.origin === appUrl })!;
        expect(new URL(frame.url()).search).toBe("");

        // Settings: a fresh install shows what the install callback sent; edit, save.
        await app.getByRole("link", { name: "Settings", exact: true }).click();
        await expect(app.locator("body")).toHaveAttribute("data-hydrated", "true");
        const orgName = app.getByLabel("Organisation name");
        await expect(orgName).toHaveValue("Demo Winery");
        await expect(app.getByLabel("Send me a weekly summary")).not.toBeChecked();
        await orgName.fill(`Demo Winery Estate (${mode})`);
        await app.getByLabel("Send me a weekly summary").check();
        await app.getByRole("button", { name: "Save settings" }).click();
        await expect(app.getByRole("status").filter({ hasText: "Settings saved." })).toBeVisible();

        // Reload: the partitioned session cookie keeps the merchant signed in.
        const appFrame = page.frame({ url: (u) => u.origin === appUrl })!;
        await appFrame.goto(`${appUrl}/settings`);
        await expect(app.getByLabel("Organisation name")).toHaveValue(`Demo Winery Estate (${mode})`);
        await expect(app.getByLabel("Send me a weekly summary")).toBeChecked();

        // Logout: back to the landing page, and the session is gone.
        await app.getByRole("button", { name: "Sign out" }).click();
        await expect(app.getByRole("heading", { level: 1 })).toHaveText("Libero for Commerce7");
        await appFrame.goto(`${appUrl}/app`);
        await expect(app.getByRole("heading", { level: 1 })).toHaveText("Libero for Commerce7");
      } finally {
        await context.close();
        cleanup();
      }
    });
  });
}

test.describe(() => {
  const servers = useServers("refused-token");

  test("a token Commerce7 refuses shows the friendly 401 page inside the iframe", async ({ page }) => {
    await installTenant(page, servers(), "demo-winery");
    await page.goto(`${servers().adminUrl}/`);
    await page.getByRole("link", { name: "Open with an invalid account token" }).click();
    await expect(page.frameLocator("#app-frame").getByRole("heading", { name: "Commerce7 didn't recognise you" })).toBeVisible();
  });
});

test.describe(() => {
  const servers = useServers("no-js-logout");

  test("signing out works without JavaScript", async ({ browser }) => {
    const { appUrl } = servers();
    const context = await browser.newContext({ javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      await installTenant(page, servers(), "second-cellar");
      // Top-level (first-party) visit, as when the app is opened in its own tab.
      await page.goto(`${appUrl}/app?tenantId=second-cellar&account=second-owner-token`);
      await expect(page.getByRole("heading", { name: "Welcome, Lee Vintner" })).toBeVisible();
      await page.getByRole("button", { name: "Sign out" }).click();
      await expect(page).toHaveURL(`${appUrl}/`);
      await page.goto(`${appUrl}/settings`);
      await expect(page).toHaveURL(`${appUrl}/`);
    } finally {
      await context.close();
    }
  });
});

test.describe(() => {
  const servers = useServers("session-ended");

  test("when the session ends elsewhere, saving settings returns to the start page with a message", async ({ browser }) => {
    const { appUrl } = servers();
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await installTenant(page, servers(), "demo-winery");
      await page.goto(`${appUrl}/app?tenantId=demo-winery&account=demo-staff-token`);
      await page.goto(`${appUrl}/settings`);
      await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
      await page.getByLabel("Contact name").fill("Sam Staff");

      // Signing out in another tab deletes the session this tab still shows.
      const other = await context.newPage();
      await other.goto(`${appUrl}/app`);
      await other.getByRole("button", { name: "Sign out" }).click();
      await expect(other).toHaveURL(`${appUrl}/`);

      await page.getByRole("button", { name: "Save settings" }).click();
      await expect(page).toHaveURL(`${appUrl}/?session=ended`);
      await expect(page.getByRole("status")).toContainText("Your Libero session has ended");
    } finally {
      await context.close();
    }
  });
});

test.describe(() => {
  const servers = useServers("field-errors");

  test("field errors from the server are shown next to the fields", async ({ browser }) => {
    const { appUrl } = servers();
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await installTenant(page, servers(), "demo-winery");
      await page.goto(`${appUrl}/app?tenantId=demo-winery&account=demo-owner-token`);
      await page.goto(`${appUrl}/settings`);
      await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
      await page.getByLabel("Contact email").fill("not-an-email");
      await page.getByRole("button", { name: "Save settings" }).click();
      await expect(page.getByRole("alert").first()).toContainText("Please correct the highlighted fields.");
      await expect(page.getByLabel("Contact email")).toHaveAttribute("aria-invalid", "true");
      await expect(page.getByText("Enter an email address like name@winery.com.")).toBeVisible();
    } finally {
      await context.close();
    }
  });
});
