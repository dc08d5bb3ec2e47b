import QRCode from 'qrcode';

/**
 * An `otpauth://` URI as a QR code image, drawn on the server: an SVG in a data URL, which the
 * pages' CSP allows as an image (img-src data:) and which needs no script on the page.
 */
export async function qrCodeDataUrl(text: string): Promise<string> {
  const svg = await QRCode.toString(text, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
  return `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`;
}
