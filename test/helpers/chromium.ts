import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';

/** Where page screenshots go (an artifact of the test run, not committed). */
export const SCREENSHOTS = join(process.cwd(), 'test-results', 'screenshots');

/**
 * Where the screenshots that guides show go, when `npm run docs:screenshots` asks for them
 * (DOCS_SCREENSHOTS=1): committed, so a change of a page shows up in review as a changed picture.
 */
export const DOCS_SCREENSHOTS = join(process.cwd(), 'docs', 'guides', 'images');

/**
 * Debian's Chromium, headless, with the flags this workplace needs (no sandbox as root; no
 * background networking, which the closed network would refuse).
 */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A screenshot at desktop and at phone width, for a person to look at. `forGuide`: a guide shows
 * it, so `npm run docs:screenshots` also writes it to docs/guides/images/.
 */
export async function screenshots(page: Page, name: string, opts: { forGuide?: boolean } = {}) {
  const dirs = [SCREENSHOTS, ...(opts.forGuide && process.env.DOCS_SCREENSHOTS === '1' ? [DOCS_SCREENSHOTS] : [])];
  for (const dir of dirs) mkdirSync(dir, { recursive: true });
  for (const [width, height, label] of [
    [1280, 800, 'desktop'],
    [390, 844, 'phone'],
  ] as const) {
    await page.setViewportSize({ width, height });
    const shot = await page.screenshot({ fullPage: true });
    for (const dir of dirs) writeFileSync(join(dir, `${name}-${label}.png`), shot);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}
