import { fileURLToPath } from 'node:url';
import nunjucks from 'nunjucks';

const VIEWS_DIR = fileURLToPath(new URL('../../views/', import.meta.url));

export type Render = (template: string, context?: Record<string, unknown>) => string;

/** Nunjucks with auto-escaping on: every interpolated value is HTML-escaped unless marked safe. */
export function createViews(): Render {
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(VIEWS_DIR, { noCache: false }), {
    autoescape: true,
    throwOnUndefined: false,
  });
  return (template, context = {}) => env.render(template, context);
}

/** For plain-text mail bodies only: nothing is escaped, so never use it for HTML. */
export function createTextViews(): Render {
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(VIEWS_DIR, { noCache: false }), { autoescape: false });
  return (template, context = {}) => env.render(template, context);
}
