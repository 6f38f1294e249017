import { expect, test } from "@playwright/test";
import { useServers } from "../support/servers";

// Who is at the keyboard, and the sessions they can see and end (issue 7): each block has its own
// Libero, fake Commerce7 and fresh database.

test.describe(() => {
  const servers = useServers("switch-user");

  test("another user of the same winery in the same browser gets their own dashboard", async ({ browser }) => {
    const { adminUrl } = servers();
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${adminUrl}/`);
      await page
        .locator("section.tenant", { hasText: "(demo-winery)" })
        .getByRole("button", { name: "Install Libero", exact: true })
        .click();
      await expect(page.getByText("Install callback for demo-winery")).toContainText("200");

      await page.goto(`${adminUrl}/`);
      await page.getByRole("link", { name: "Open as Dana Owner (light theme)" }).click();
      const app = page.frameLocator("#app-frame");
      await expect(app.getByRole("heading", { name: "Welcome, Dana Owner" })).toBeVisible();

      // Same browser, same winery, another person: never Dana's session.
      await page.goto(`${adminUrl}/`);
      await page.getByRole("link", { name: "Open as Sam Staff (light theme)" }).click();
      await expect(app.getByRole("heading", { name: "Welcome, Sam Staff" })).toBeVisible();
      await expect(app.getByRole("heading", { name: "Welcome, Dana Owner" })).toHaveCount(0);
    } finally {
      await context.close();
    }
  });
});

test.describe(() => {
  const servers = useServers("your-sessions");

  test("the sessions panel lists two browsers and signing out the other one ends it", async ({ browser }) => {
    const { appUrl, adminUrl } = servers();
    // Install through the fake's callback, then sign Dana in from two separate browsers.
    const admin = await browser.newContext();
    const office = await browser.newContext({ userAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36" });
    const counter = await browser.newContext({ userAgent: "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1" });
    try {
      const adminPage = await admin.newPage();
      await adminPage.goto(`${adminUrl}/`);
      await adminPage
        .locator("section.tenant", { hasText: "(demo-winery)" })
        .getByRole("button", { name: "Install Libero", exact: true })
        .click();
      await expect(adminPage.getByText("Install callback for demo-winery")).toContainText("200");

      const tablet = await counter.newPage();
      await tablet.goto(`${appUrl}/app?tenantId=demo-winery&account=demo-owner-token`);
      await expect(tablet.getByRole("heading", { name: "Welcome, Dana Owner" })).toBeVisible();

      const desk = await office.newPage();
      await desk.goto(`${appUrl}/app?tenantId=demo-winery&account=demo-owner-token`);
      await expect(desk.locator("body")).toHaveAttribute("data-hydrated", "true");
      const panel = desk.locator("section", { has: desk.getByRole("heading", { name: "Your sessions" }) });
      await expect(panel.getByRole("listitem")).toHaveCount(2);
      await expect(panel.getByRole("listitem").filter({ hasText: "This browser" })).toContainText("Windows");
      await expect(panel.getByRole("listitem").filter({ hasNotText: "This browser" })).toContainText("Safari");

      // From the keyboard: once the list renders again without the button, the keyboard's place
      // is the panel's heading, not the top of the page.
      await panel.getByRole("button", { name: "Sign out all other sessions" }).focus();
      await desk.keyboard.press("Enter");
      await expect(panel.getByRole("listitem")).toHaveCount(1);
      // In place: the list is asked for with the renewed credential, so the page does not reload
      // (which would lose the notice and the focus).
      await expect(panel.getByRole("status")).toContainText("Signed out 1 other session.");
      await expect(panel.getByRole("heading", { name: "Your sessions" })).toBeFocused();

      // The tablet's next click finds its session ended and says so.
      await expect(tablet.locator("body")).toHaveAttribute("data-hydrated", "true");
      await tablet.getByRole("link", { name: "Settings", exact: true }).click();
      await expect(tablet.locator("#no-session")).toHaveAttribute("data-reason", "ended");
      await expect(tablet.getByRole("heading", { level: 1 })).toHaveText("Your Libero session has ended");
      await expect(tablet).toHaveURL(`${appUrl}/settings`);
    } finally {
      await Promise.all([admin.close(), office.close(), counter.close()]);
    }
  });
});
