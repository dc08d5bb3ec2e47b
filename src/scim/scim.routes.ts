import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import { AppError, BadRequest, PayloadTooLarge } from '../base/errors.ts';
import { jsonBody } from '../http/body.ts';
import type { DirectoryService } from './directory.service.ts';
import { scimBaseUrl } from './directory.service.ts';
import { MAX_BODY, resourceTypes, SCHEMA, schemas, serviceProviderConfig } from './scim-discovery.ts';
import { scimError, scimErrorBody } from './scim-errors.ts';
import type { ScimProvisioning, ScimScope } from './scim-provisioning.ts';
import { etag, projection } from './scim-resources.ts';

/**
 * The SCIM 2.0 service provider (RFC 7644) of one directory, at /t/<slug>/scim/v2/<directoryId>.
 * Every answer is application/scim+json; every refusal, from a bad token to a body too large,
 * is a SCIM error document. Each authenticated request's outcome is kept as the directory's last
 * request, which the portal shows the organization's owners.
 */

const SCIM_PATH = /^\/t\/[^/]+\/scim\/v2\/([^/]+)(\/.*)?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SCIM_TYPE = 'application/scim+json; charset=utf-8';
const UNAUTHORIZED = "Send the directory's bearer token as Authorization: Bearer <token>.";

interface ScimRequest {
  scope?: ScimScope;
  outcome?: string;
}
const requests = new WeakMap<Context, ScimRequest>();
const scopeOf = (ctx: Context) => requests.get(ctx)!.scope!;
const say = (ctx: Context, outcome: string) => {
  requests.get(ctx)!.outcome = outcome;
};

function send(ctx: Context, status: number, body: unknown, version?: number) {
  ctx.status = status;
  ctx.body = body;
  ctx.set('Content-Type', SCIM_TYPE);
  if (version !== undefined) ctx.set('ETag', etag(version));
}

/** Errors as SCIM error documents, whatever raised them (our rules, the body parser, a bug). */
async function scimErrors(ctx: Context, next: Next) {
  try {
    await next();
  } catch (err) {
    const problem = asAppError(err);
    if (problem.status >= 500) ctx.state.log.error({ err }, 'unhandled error in the SCIM service provider');
    const request = requests.get(ctx);
    if (request) request.outcome = `refused: ${problem.detail}`;
    for (const [k, v] of Object.entries(problem.headers ?? {})) ctx.set(k, v);
    send(ctx, problem.status, scimErrorBody(problem));
  }
}

function asAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  const e = err as { status?: number; type?: string };
  if (e?.status === 413) return PayloadTooLarge(`The request body is larger than ${MAX_BODY}.`);
  // co-body's JSON.parse failure carries only a 400.
  if (e?.type === 'entity.parse.failed' || e?.status === 400) return scimError(400, 'invalidSyntax', 'The request body is not valid JSON.');
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) return BadRequest('The request could not be read.');
  return scimError(500, undefined, 'Something went wrong on our side. The request id in the X-Request-Id header identifies it in the logs.');
}

/** The directory the bearer token opens; one 401 for every way of not having it. */
function authenticate(directories: DirectoryService, publicUrl: string) {
  return async (ctx: Context, next: Next) => {
    const [, directoryId, rest] = SCIM_PATH.exec(ctx.path)!;
    const bearer = /^Bearer\s+(\S+)$/i.exec(ctx.get('authorization'))?.[1];
    const tenant = ctx.state.runtime.tenant;
    const directory = bearer && UUID.test(directoryId!) ? await directories.authenticate(tenant.id, directoryId!, bearer) : undefined;
    if (!directory) throw new AppError(401, 'unauthorized', 'Unauthorized', UNAUTHORIZED, undefined, { 'WWW-Authenticate': 'Bearer' });
    if (!directory.enabled)
      throw scimError(
        403,
        undefined,
        "This directory is turned off. An owner of the organization turns it on in the portal's Directory sync tab (a directory set up through a setup link starts off until an owner has reviewed it).",
      );
    const request: ScimRequest = { scope: { tenantId: tenant.id, directory, base: scimBaseUrl(publicUrl, tenant.slug, directory.id) } };
    requests.set(ctx, request);
    // The error boundary after this one has answered refusals: the status is the one the directory got.
    await next();
    directories.noteRequest(
      tenant.id,
      directory.id,
      {
        at: new Date().toISOString(),
        method: ctx.method,
        path: (rest ?? '/').slice(0, 200),
        status: ctx.status,
        outcome: (request.outcome ?? (ctx.status < 400 ? 'ok' : 'refused')).slice(0, 500),
      },
      (err) => ctx.state.log.warn({ err }, "the SCIM directory's last request could not be recorded"),
    );
  };
}

function routes(provisioning: ScimProvisioning) {
  const r = new Router({ prefix: '/t/:slug/scim/v2/:directoryId' });
  const q = (ctx: Context, name: string) => {
    const v = ctx.query[name];
    return typeof v === 'string' ? v : Array.isArray(v) ? v[0] : undefined;
  };
  const ifMatch = (ctx: Context) => ctx.get('if-match') || undefined;
  /** GET with If-None-Match naming the current version: 304, nothing sent. */
  const notModified = (ctx: Context, version: number) => {
    const tags = (ctx.get('if-none-match') || '').split(',').map((t) => t.trim());
    return tags.includes(etag(version)) || tags.includes('*');
  };

  r.get('/ServiceProviderConfig', (ctx) => {
    send(ctx, 200, serviceProviderConfig(scopeOf(ctx).base));
    say(ctx, 'read the service provider configuration');
  });
  r.get('/ResourceTypes', (ctx) => {
    const all = resourceTypes(scopeOf(ctx).base);
    send(ctx, 200, { schemas: [SCHEMA.listResponse], totalResults: all.length, startIndex: 1, itemsPerPage: all.length, Resources: all });
    say(ctx, 'read the resource types');
  });
  r.get('/ResourceTypes/:id', (ctx) => {
    const found = resourceTypes(scopeOf(ctx).base).find((t) => t.id === ctx.params.id);
    if (!found) throw scimError(404, undefined, `No resource type ${ctx.params.id}: User and Group are served.`);
    send(ctx, 200, found);
  });
  r.get('/Schemas', (ctx) => {
    const all = schemas(scopeOf(ctx).base);
    send(ctx, 200, { schemas: [SCHEMA.listResponse], totalResults: all.length, startIndex: 1, itemsPerPage: all.length, Resources: all });
    say(ctx, 'read the schemas');
  });
  r.get('/Schemas/:id', (ctx) => {
    const found = schemas(scopeOf(ctx).base).find((t) => t.id === ctx.params.id);
    if (!found) throw scimError(404, undefined, `No schema ${ctx.params.id}.`);
    send(ctx, 200, found);
  });

  // ── Users
  r.get('/Users', async (ctx) => {
    const list = await provisioning.listUsers(scopeOf(ctx), { filter: q(ctx, 'filter'), startIndex: q(ctx, 'startIndex'), count: q(ctx, 'count') });
    const view = projection(q(ctx, 'attributes'), q(ctx, 'excludedAttributes'));
    send(ctx, 200, { ...list, Resources: list.Resources.map(view.apply) });
    say(ctx, `listed users${q(ctx, 'filter') ? ` where ${q(ctx, 'filter')!.slice(0, 120)}` : ''}: ${list.totalResults} found`);
  });
  r.get('/Users/:id', async (ctx) => {
    const { resource, version } = await provisioning.getUser(scopeOf(ctx), ctx.params.id!);
    say(ctx, `read user ${resource.userName}`);
    if (notModified(ctx, version)) {
      ctx.status = 304;
      ctx.set('ETag', etag(version));
      return;
    }
    send(ctx, 200, projection(q(ctx, 'attributes'), q(ctx, 'excludedAttributes')).apply(resource), version);
  });
  r.post('/Users', async (ctx) => {
    const done = await provisioning.createUser(scopeOf(ctx), ctx.request.body);
    ctx.set('Location', done.resource.meta.location);
    send(ctx, 201, done.resource, done.version);
    say(ctx, done.outcome);
  });
  r.put('/Users/:id', async (ctx) => {
    const done = await provisioning.replaceUser(scopeOf(ctx), ctx.params.id!, ctx.request.body, ifMatch(ctx));
    send(ctx, 200, done.resource, done.version);
    say(ctx, done.outcome);
  });
  r.patch('/Users/:id', async (ctx) => {
    const done = await provisioning.patchUser(scopeOf(ctx), ctx.params.id!, ctx.request.body, ifMatch(ctx));
    send(ctx, 200, done.resource, done.version);
    say(ctx, done.outcome);
  });
  r.delete('/Users/:id', async (ctx) => {
    const done = await provisioning.deleteUser(scopeOf(ctx), ctx.params.id!, ifMatch(ctx));
    ctx.status = 204;
    say(ctx, done.outcome);
  });

  // ── Groups (Entra asks for them without members: excludedAttributes=members)
  r.get('/Groups', async (ctx) => {
    const view = projection(q(ctx, 'attributes'), q(ctx, 'excludedAttributes'));
    const list = await provisioning.listGroups(
      scopeOf(ctx),
      { filter: q(ctx, 'filter'), startIndex: q(ctx, 'startIndex'), count: q(ctx, 'count') },
      view.wants('members'),
    );
    send(ctx, 200, { ...list, Resources: list.Resources.map(view.apply) });
    say(ctx, `listed groups${q(ctx, 'filter') ? ` where ${q(ctx, 'filter')!.slice(0, 120)}` : ''}: ${list.totalResults} found`);
  });
  r.get('/Groups/:id', async (ctx) => {
    const view = projection(q(ctx, 'attributes'), q(ctx, 'excludedAttributes'));
    const { resource, version } = await provisioning.getGroup(scopeOf(ctx), ctx.params.id!, view.wants('members'));
    say(ctx, `read group ${resource.displayName}`);
    if (notModified(ctx, version)) {
      ctx.status = 304;
      ctx.set('ETag', etag(version));
      return;
    }
    send(ctx, 200, view.apply(resource), version);
  });
  r.post('/Groups', async (ctx) => {
    const done = await provisioning.createGroup(scopeOf(ctx), ctx.request.body);
    ctx.set('Location', done.resource.meta.location);
    send(ctx, 201, done.resource, done.version);
    say(ctx, done.outcome);
  });
  r.put('/Groups/:id', async (ctx) => {
    const done = await provisioning.replaceGroup(scopeOf(ctx), ctx.params.id!, ctx.request.body, ifMatch(ctx));
    send(ctx, 200, done.resource, done.version);
    say(ctx, done.outcome);
  });
  r.patch('/Groups/:id', async (ctx) => {
    const done = await provisioning.patchGroup(scopeOf(ctx), ctx.params.id!, ctx.request.body, ifMatch(ctx));
    send(ctx, 200, done.resource, done.version);
    say(ctx, done.outcome);
  });
  r.delete('/Groups/:id', async (ctx) => {
    const done = await provisioning.deleteGroup(scopeOf(ctx), ctx.params.id!, ifMatch(ctx));
    ctx.status = 204;
    say(ctx, done.outcome);
  });
  return r;
}

/** Runs `middleware` in order, as koa would. */
function chain(middleware: Middleware[]): Middleware {
  return (ctx, next) => {
    const run = (i: number): Promise<void> => Promise.resolve(i === middleware.length ? next() : middleware[i]!(ctx, () => run(i + 1)));
    return run(0);
  };
}

export function scimRoutes(deps: { directories: DirectoryService; provisioning: ScimProvisioning; publicUrl: string }): Middleware {
  const router = routes(deps.provisioning);
  const served = chain([
    scimErrors,
    authenticate(deps.directories, deps.publicUrl),
    scimErrors,
    ...jsonBody(MAX_BODY),
    router.routes() as Middleware,
    (ctx) => {
      throw scimError(
        404,
        undefined,
        `Nothing at ${ctx.method} ${SCIM_PATH.exec(ctx.path)![2] ?? '/'}: the service provider serves /ServiceProviderConfig, /ResourceTypes, /Schemas, /Users and /Groups.`,
      );
    },
  ]);
  return (ctx, next) => (SCIM_PATH.test(ctx.path) ? served(ctx, next) : next());
}
