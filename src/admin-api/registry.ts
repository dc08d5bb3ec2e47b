import type Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import { NotFound } from '../base/errors.ts';
import { readBody, readQuery } from '../base/validate.ts';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface RouteSpec<P = unknown, Q = unknown, B = unknown> {
  method: Method;
  /** Koa path below /api/v1/admin, with `:name` parameters. */
  path: string;
  summary: string;
  tag: string;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** Success status → description (errors are documented once for all routes). */
  responses: Record<number, string>;
  handler: (ctx: Context, input: { params: P; query: Q; body: B }) => unknown | Promise<unknown>;
}

/**
 * The Admin API as data: each route's schemas validate its requests *and* generate its OpenAPI
 * description, so the two can't drift apart.
 */
export class ApiRegistry {
  // biome-ignore lint/suspicious/noExplicitAny: routes differ in their params, query and body types; add() type-checks each spec on its own.
  readonly routes: RouteSpec<any, any, any>[] = [];

  add<P, Q, B>(spec: RouteSpec<P, Q, B>) {
    this.routes.push(spec);
  }

  mount(router: Router) {
    for (const spec of this.routes) {
      router[spec.method](spec.path, async (ctx) => {
        let params: unknown = ctx.params;
        if (spec.params) {
          const r = spec.params.safeParse(ctx.params);
          // A malformed id can't name anything: answer as for an unknown one.
          if (!r.success) throw NotFound('Nothing with that id here.');
          params = r.data;
        }
        const query = spec.query ? readQuery(ctx, spec.query) : undefined;
        const body = spec.body ? readBody(ctx, spec.body) : undefined;
        await spec.handler(ctx, { params, query, body });
      });
    }
  }

  /** OpenAPI 3.1 (JSON Schema 2020-12) from the same zod schemas. */
  openapi(info: { title: string; version: string; serverUrl: string }) {
    const paths: Record<string, Record<string, unknown>> = {};
    const schema = (s: z.ZodType, io: 'input' | 'output' = 'input') => {
      const { $schema, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Record<string, unknown>;
      void $schema;
      return rest;
    };
    for (const spec of this.routes) {
      const path = spec.path.replace(/:(\w+)/g, '{$1}');
      const parameters: unknown[] = [];
      for (const name of spec.path.match(/:(\w+)/g) ?? []) {
        const key = name.slice(1);
        const shape = spec.params && 'shape' in spec.params ? (spec.params as unknown as z.ZodObject).shape[key] : undefined;
        parameters.push({ name: key, in: 'path', required: true, schema: shape ? schema(shape as z.ZodType) : { type: 'string' } });
      }
      if (spec.query && 'shape' in spec.query) {
        for (const [key, s] of Object.entries((spec.query as unknown as z.ZodObject).shape)) {
          parameters.push({ name: key, in: 'query', required: !(s as z.ZodType).safeParse(undefined).success, schema: schema(s as z.ZodType) });
        }
      }
      const responses: Record<string, unknown> = {};
      for (const [status, description] of Object.entries(spec.responses)) responses[status] = { description };
      responses.default = { description: 'Error', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };
      paths[path] ??= {};
      paths[path][spec.method] = {
        summary: spec.summary,
        tags: [spec.tag],
        operationId: `${spec.method}${spec.path.replace(/[:/{}-](\w)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
        ...(parameters.length ? { parameters } : {}),
        ...(spec.body ? { requestBody: { required: true, content: { 'application/json': { schema: schema(spec.body) } } } } : {}),
        responses,
      };
    }
    return {
      openapi: '3.1.0',
      info: { title: info.title, version: info.version },
      servers: [{ url: info.serverUrl }],
      security: [{ bearer: [] }],
      paths,
      components: {
        securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An admin API key (tsk_…) or an access token with the admin scope' } },
        schemas: {
          Problem: {
            type: 'object',
            description: 'RFC 9457 problem details',
            properties: {
              type: { type: 'string' },
              title: { type: 'string' },
              status: { type: 'integer' },
              detail: { type: 'string' },
              code: { type: 'string' },
              request_id: { type: 'string' },
              errors: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } } },
            },
            required: ['title', 'status', 'detail'],
          },
        },
      },
    };
  }
}
