import { type Page, expect, test } from "@playwright/test";
import { installTenant } from "../support/merchant";
import { useServers } from "../support/servers";

// Every image on every page a merchant can see decodes: a broken image (an SVG that is not
// well-formed XML, a wrong path) shows as the browser's broken-image icon, which no other test
// would notice. `HTMLImageElement.decode()` rejects for an image that cannot be shown.

const servers = useServers("images");

/** Decodes every `<img>` of the page; returns the failures (`src: reason`) and how many there were. */
async function undecodable(page: Page): Promise<{ count: number; failures: string[] }> {
  return page.evaluate(async () => {
    const images = [...document.images];
    const failures: string[] = [];
    for (const img of images) {
      try {
        await img.decode();
        if (img.naturalWidth === 0) failures.push(`${img.src}: no size`);
      } catch (err) {
        failures.push(`${img.src}: ${err}`);
      }
    }
    return { count: images.length, failures };
  });
}

test("every image on every page decodes", async ({ page }) => {
  const { appUrl } = servers();
  await installTenant(page, servers(), "demo-winery");
  const pages: [string, string][] = [
    ["the landing page", `${appUrl}/`],
    ["the 404 page", `${appUrl}/nowhere`],
    ["the no-session page", `${appUrl}/settings`],
    ["an error page (a refused token)", `${appUrl}/app?tenantId=demo-winery&account=not-a-token`],
    ["the dashboard", `${appUrl}/app?tenantId=demo-winery&account=demo-owner-token`],
    ["the settings page", `${appUrl}/settings`],
    ["the report", `${appUrl}/reports/sessions`],
  ];
  for (const [name, url] of pages) {
    await page.goto(url);
    const { count, failures } = await undecodable(page);
    // Positive control: the brand mark is in every page's header, so there is something to decode.
    expect(count, name).toBeGreaterThan(0);
    expect(failures, name).toEqual([]);
  }

  // Control: a broken image is caught.
  await page.evaluate(() => {
    const broken = document.createElement("img");
    broken.src = "data:image/svg+xml," + encodeURIComponent("<svg xmlns='http://www.w3.org/2000/svg'><!-- a -- b --></svg>");
    document.body.append(broken);
  });
  expect((await undecodable(page)).failures).toHaveLength(1);
});
