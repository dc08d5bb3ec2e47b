/**
 * Makes views/assets/favicon.ico from views/assets/favicon.svg: the SVG drawn by Chromium at 16
 * and 32 pixels, each PNG an entry of the ICO (the PNG-in-ICO form every current browser reads).
 * The pages link the SVG; the ICO answers `/favicon.ico`, which browsers ask for on their own.
 *
 *   node --import tsx scripts/favicon-ico.ts      # after changing the SVG; needs /usr/bin/chromium (or CHROMIUM_PATH)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const ASSETS = new URL('../views/assets/', import.meta.url);
const SIZES = [16, 32];

const svg = readFileSync(new URL('favicon.svg', ASSETS)).toString('base64');
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
const pngs: Buffer[] = [];
try {
  const page = await browser.newPage();
  for (const size of SIZES) {
    await page.setViewportSize({ width: size, height: size });
    await page.setContent(
      `<style>html,body{margin:0;background:transparent}</style><img src="data:image/svg+xml;base64,${svg}" width="${size}" height="${size}">`,
    );
    await page.locator('img').evaluate((img: HTMLImageElement) => img.decode());
    pngs.push(await page.screenshot({ omitBackground: true, clip: { x: 0, y: 0, width: size, height: size } }));
  }
} finally {
  await browser.close();
}

// ICONDIR (6 bytes), one ICONDIRENTRY (16 bytes) per image, then the images.
const header = Buffer.alloc(6 + 16 * pngs.length);
header.writeUInt16LE(0, 0); // reserved
header.writeUInt16LE(1, 2); // type: icon
header.writeUInt16LE(pngs.length, 4);
let offset = header.length;
pngs.forEach((png, i) => {
  const entry = 6 + 16 * i;
  header.writeUInt8(SIZES[i]!, entry); // width (0 would mean 256)
  header.writeUInt8(SIZES[i]!, entry + 1); // height
  header.writeUInt16LE(1, entry + 4); // colour planes
  header.writeUInt16LE(32, entry + 6); // bits per pixel
  header.writeUInt32LE(png.length, entry + 8);
  header.writeUInt32LE(offset, entry + 12);
  offset += png.length;
});
writeFileSync(new URL('favicon.ico', ASSETS), Buffer.concat([header, ...pngs]));
console.log(`views/assets/favicon.ico: ${offset} bytes (${SIZES.join(', ')} px)`);
