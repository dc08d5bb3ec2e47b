import type { Render } from '../base/views.ts';
import type { ComposedMail } from './outbox.ts';

/** Renders `views/mail/<kind>.html.njk` (auto-escaped) and `<kind>.txt.njk` (plain) into one message. */
export function mailRenderer(renderHtml: Render, renderText: Render) {
  return (kind: string, subject: string, context: Record<string, unknown>): ComposedMail => ({
    subject,
    html: renderHtml(`mail/${kind}.html.njk`, context),
    text: renderText(`mail/${kind}.txt.njk`, context),
  });
}
