import { type Page, expect, test } from "@playwright/test";
import { installTenant } from "../support/merchant";
import { type Servers, useServers } from "../support/servers";

// The merchant flow's edges: a refused account token, signing out without JavaScript, the
// sign-in's address, a session ended elsewhere, field errors. The full flow inside the admin
// simulator's cross-site iframe, in every browser mode, is in every-browser.spec.ts.
//
// Every test below runs in its own (anonymous) describe block with its own Libero, fake Commerce7
// and fresh database: each starts from a clean install and asserts exact values.

/** Where the sign-in's page sends a browser without script: the dashboard with a single-use handoff code. */
const HANDOFF_URL = (appUrl: string) => new RegExp(`^${appUrl.replace(/[.:/]/g, "\\$&")}/app\\?handoff=[A-Za-z0-9_-]{43}$`);

/** Installs demo-winery, signs the user of `account` in and opens Settings, hydrated. */
async function hydratedSettings(page: Page, servers: Servers, account: string) {
  await installTenant(page, servers, "demo-winery");
  await page.goto(`${servers.appUrl}/app?tenantId=demo-winery&account=${account}`);
  await page.goto(`${servers.appUrl}/settings`);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
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
      // Top-level (first-party) visit, as when the app is opened in its own tab. Without
      // JavaScript the sign-in's page sends the browser on at once (<noscript> refresh) to the
      // page with a handoff code, so the account token leaves the address bar; nothing removes
      // the (then used) code.
      await page.goto(`${appUrl}/app?tenantId=second-cellar&account=second-owner-token`);
      await expect(page).toHaveURL(HANDOFF_URL(appUrl));
      await expect(page.getByRole("heading", { name: "Welcome, Lee Vintner" })).toBeVisible();
      // Positive control: the cookie opens a signed-in page before the sign-out.
      const before = await page.goto(`${appUrl}/settings`);
      expect(before?.status()).toBe(200);
      await expect(page.getByRole("heading", { level: 1 })).toHaveText("Settings");

      await page.getByRole("button", { name: "Sign out", exact: true }).click();
      await expect(page).toHaveURL(`${appUrl}/`);
      const after = await page.goto(`${appUrl}/settings`);
      expect(after?.status()).toBe(401);
      await expect(page).toHaveURL(`${appUrl}/settings`);
      await expect(page.locator("#no-session")).toHaveAttribute("data-reason", "missing");
      await expect(page.getByRole("heading", { level: 1 })).toHaveText("Libero needs you to sign in again");
    } finally {
      await context.close();
    }
  });
});

test.describe(() => {
  const servers = useServers("sign-in-address");

  test("the sign-in leaves no secret in the frame's address or history: that address in another browser finds no session", async ({ browser }) => {
    const { appUrl } = servers();
    const first = await browser.newContext();
    const second = await browser.newContext();
    try {
      const page = await first.newPage();
      await installTenant(page, servers(), "demo-winery");
      const response = await page.goto(`${appUrl}/app?tenantId=demo-winery&account=demo-owner-token`);
      // The sign-in answers with the dashboard itself, not a redirect.
      expect(response?.status()).toBe(200);
      expect(response?.request().redirectedFrom()).toBeNull();
      await expect(page.getByRole("heading", { name: "Welcome, Dana Owner" })).toBeVisible();
      await expect(page).toHaveURL(`${appUrl}/app`);
      // The history entry was replaced, not added to: no entry holds the account token.
      const entries = await page.evaluate(() =>
        (window as unknown as { navigation: { entries(): { url: string }[] } }).navigation.entries().map((e) => e.url),
      );
      expect(entries.filter((url) => url.includes("account=") || url.includes("tenantId="))).toEqual([]);
      expect(entries.at(-1)).toBe(`${appUrl}/app`);

      // The address as it now is, in a browser without the first one's cookie: no session.
      const other = await second.newPage();
      const elsewhere = await other.goto(page.url());
      expect(elsewhere?.status()).toBe(401);
      await expect(other.locator("#no-session")).toHaveAttribute("data-reason", "missing");
      await expect(other.getByRole("heading", { name: "Welcome, Dana Owner" })).toHaveCount(0);
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });
});

test.describe(() => {
  const servers = useServers("session-ended");

  test("when the session ends elsewhere, saving settings shows that the session has ended", async ({ browser }) => {
    const { appUrl } = servers();
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await hydratedSettings(page, servers(), "demo-staff-token");
      await page.getByLabel("Contact name").fill("Sam Staff");

      // Signing out in another tab deletes the session this tab still shows.
      const other = await context.newPage();
      await other.goto(`${appUrl}/app`);
      await expect(other.locator("body")).toHaveAttribute("data-hydrated", "true");
      await other.getByRole("button", { name: "Sign out", exact: true }).click();
      await expect(other).toHaveURL(`${appUrl}/`);

      // The save is refused (401); the tab reloads its page, which says the session ended.
      const save = page.waitForResponse((r) => new URL(r.url()).pathname === "/api/save_settings");
      await page.getByRole("button", { name: "Save settings" }).click();
      expect((await save).status()).toBe(401);
      await expect(page.locator("#no-session")).toHaveAttribute("data-reason", "ended");
      await expect(page.getByRole("heading", { level: 1 })).toHaveText("Your Libero session has ended");
      await expect(page).toHaveURL(`${appUrl}/settings`);
      await expect(page.getByRole("status").filter({ hasText: "Settings saved." })).toHaveCount(0);
    } finally {
      await context.close();
    }
  });
});

test.describe(() => {
  const servers = useServers("field-errors");

  test("field errors from the server are shown next to the fields", async ({ browser }) => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await hydratedSettings(page, servers(), "demo-owner-token");
      await page.getByLabel("Contact email").fill("not-an-email");
      await page.getByRole("button", { name: "Save settings" }).click();
      await expect(page.getByRole("alert").first()).toContainText("Please correct the highlighted fields.");
      await expect(page.getByLabel("Contact email")).toHaveAttribute("aria-invalid", "true");
      await expect(page.getByText("Enter an email address like name@winery.com.")).toBeVisible();
    } finally {
      await context.close();
    }
  });

  test("saving from the keyboard keeps the focus on Save, and pressing it again while it saves sends nothing more", async ({ browser }) => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await hydratedSettings(page, servers(), "demo-owner-token");
      const saves: string[] = [];
      page.on("request", (r) => {
        if (new URL(r.url()).pathname === "/api/save_settings") saves.push(r.url());
      });
      // The answer is held, so that the second press lands while the first save is in flight.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      await page.route("**/api/save_settings", async (route) => {
        await held;
        await route.continue();
      });
      const button = page.locator("#save-settings");
      await button.focus();
      await page.keyboard.press("Enter");
      await expect(button).toHaveAttribute("aria-busy", "true");
      await expect(button).toBeFocused();
      await page.keyboard.press("Enter");
      release();
      await expect(page.getByRole("status").filter({ hasText: "Settings saved." })).toBeVisible();
      await expect(button).toHaveAttribute("aria-busy", "false");
      await expect(button).toBeFocused();
      expect(saves, "one save for two presses").toHaveLength(1);
    } finally {
      await context.close();
    }
  });

  /** The field error a plain form brings back: the settings form posted with a bad email before
   * the page's code has loaded (the answer brings the error in its address), then the code loads
   * and the page hydrates with the error shown (the control of the tests below). */
  const BAD_EMAIL = "Enter an email address like name@winery.com.";
  async function plainFormErrorThenHydrated(page: Page, appUrl: string) {
    await installTenant(page, servers(), "demo-winery");
    await page.goto(`${appUrl}/app?tenantId=demo-winery&account=demo-owner-token`);
    await page.route("**/*.wasm", (route) => route.abort());
    await page.goto(`${appUrl}/settings`);
    await page.getByLabel("Contact email").fill("not-an-email");
    await page.getByRole("button", { name: "Save settings" }).click();
    await expect(page).toHaveURL(/__err=/);
    await expect(page.getByText(BAD_EMAIL)).toBeVisible();
    await page.unroute("**/*.wasm");
    await page.reload();
    await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
    await expect(page.getByText(BAD_EMAIL)).toBeVisible();
  }

  /** The settings page as it is when no error was posted. */
  async function expectNoFieldError(page: Page) {
    await expect(page.getByLabel("Organisation name")).toHaveValue("Demo Winery");
    await expect(page.getByText(BAD_EMAIL)).toHaveCount(0);
    await expect(page.getByRole("alert")).toHaveCount(0);
    await expect(page.getByLabel("Contact email")).not.toHaveAttribute("aria-invalid", "true");
  }

  test("a plain form's field error is not shown again when Settings is opened later from the app's menu", async ({ browser }) => {
    const { appUrl } = servers();
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await plainFormErrorThenHydrated(page, appUrl);
      await page.getByRole("link", { name: "Dashboard" }).click();
      await expect(page).toHaveURL(`${appUrl}/app`);
      await page.getByRole("link", { name: "Settings", exact: true }).click();
      await expect(page).toHaveURL(`${appUrl}/settings`);
      await expectNoFieldError(page);
    } finally {
      await context.close();
    }
  });

  test("a plain form's field error leaves the address once the page has hydrated, so a reload does not show it again", async ({ browser }) => {
    const { appUrl } = servers();
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await plainFormErrorThenHydrated(page, appUrl);
      await expect(page).not.toHaveURL(/__(path|err|sig)=/);
      await page.reload();
      await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
      await expectNoFieldError(page);
    } finally {
      await context.close();
    }
  });
});

test.describe(() => {
  const servers = useServers("code-splitting");
  /** The settings page's lazily loaded wasm chunk (`cargo leptos --split`). */
  const SETTINGS_CHUNK = /\/pkg\/split___settings_route_view_[^/]*\.wasm$/;
  const signIn = (page: Page) => page.goto(`${servers().appUrl}/app?tenantId=demo-winery&account=demo-owner-token`);
  /** The console lines of wasm-split's panic when a chunk cannot be loaded, as they come. */
  const chunkPanics = (page: Page) => {
    const panics: string[] = [];
    page.on("console", (message) => message.text().includes("load callback should succeed") && panics.push(message.text()));
    return panics;
  };

  test("the dashboard hydrates and works without the settings page's code", async ({ browser }) => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await installTenant(page, servers(), "demo-winery");
      const blocked: string[] = [];
      await page.route(SETTINGS_CHUNK, (route) => {
        blocked.push(route.request().url());
        return route.abort();
      });
      await signIn(page);
      await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
      await expect(page.getByRole("heading", { name: "Welcome, Dana Owner" })).toBeVisible();
      // Control: the page did ask for the chunk (its prefetch), so the block was in the way.
      await expect.poll(() => blocked.length).toBeGreaterThan(0);
      // And the app is still live: the hydrated sign-out (with the tab token) works.
      const logout = page.waitForResponse((r) => new URL(r.url()).pathname === "/api/logout");
      await page.getByRole("button", { name: "Sign out", exact: true }).click();
      expect((await logout).status()).toBe(200);
      await expect(page).toHaveURL(`${servers().appUrl}/`);
    } finally {
      await context.close();
    }
  });

  test("the dashboard prefetches the settings code, so Settings opens with the network gone", async ({ browser }) => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await installTenant(page, servers(), "demo-winery");
      const prefetched = page.waitForResponse((response) => SETTINGS_CHUNK.test(response.url()));
      await signIn(page);
      await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
      const chunk = await prefetched;
      expect(chunk.status()).toBe(200);
      await chunk.finished(); // the whole body is in the HTTP cache before the network goes

      await context.setOffline(true);
      await page.getByRole("navigation").getByRole("link", { name: "Settings" }).click();
      // The page's code came from the HTTP cache; only its data needed the network.
      await expect(page).toHaveURL(`${servers().appUrl}/settings`);
      await expect(page.getByRole("heading", { level: 1 })).toHaveText("Settings");
      await expect(page.getByRole("alert")).toContainText("Libero couldn't be reached");
      // Control: back online, the same page loads the settings.
      await context.setOffline(false);
      await page.reload();
      await expect(page.getByLabel("Organisation name")).toHaveValue("Demo Winery");
    } finally {
      await context.close();
    }
  });

  test("a settings page whose code keeps failing to load reloads once, then stays as the server rendered it", async ({ browser }) => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await installTenant(page, servers(), "demo-winery");
      await page.route(SETTINGS_CHUNK, (route) => route.abort());
      await signIn(page);
      await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
      const panics = chunkPanics(page);
      let loads = 0;
      page.on("load", () => loads++);
      await page.goto(`${servers().appUrl}/settings`);
      // The first failure reloads the page; the reloaded page fails again and is left alone.
      await expect.poll(() => panics.length).toBe(2);
      await expect.poll(() => loads).toBe(2); // the visit and the one reload
      await page.evaluate(() => new Promise<void>((done) => requestAnimationFrame(() => requestAnimationFrame(() => done()))));
      expect([panics.length, loads]).toEqual([2, 2]); // and nothing after it
      await expect(page).toHaveURL(`${servers().appUrl}/settings`);
      await expect(page.getByLabel("Organisation name")).toHaveValue("Demo Winery");
      await expect(page.locator("body")).not.toHaveAttribute("data-hydrated", "true");
    } finally {
      await context.close();
    }
  });

  test("when the settings code cannot be loaded, the page reloads instead of stopping halfway, and Settings opens once it can", async ({ browser }) => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await installTenant(page, servers(), "demo-winery");
      let blocking = true;
      await page.route(SETTINGS_CHUNK, (route) => (blocking ? route.abort() : route.continue()));
      await signIn(page);
      await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
      const panics = chunkPanics(page);
      const reloaded = page.waitForEvent("load");
      await page.getByRole("navigation").getByRole("link", { name: "Settings" }).click();
      await reloaded;
      expect(panics.length).toBe(1);
      // The page the merchant was on, from the server, hydrated again.
      await expect(page).toHaveURL(`${servers().appUrl}/app`);
      await expect(page.getByRole("heading", { name: "Welcome, Dana Owner" })).toBeVisible();
      await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");

      // Control: with the code reachable again, the same click opens Settings in place.
      blocking = false;
      await page.getByRole("navigation").getByRole("link", { name: "Settings" }).click();
      await expect(page).toHaveURL(`${servers().appUrl}/settings`);
      await expect(page.getByLabel("Organisation name")).toHaveValue("Demo Winery");
      expect(panics.length).toBe(1);
    } finally {
      await context.close();
    }
  });
});
