import test from 'ava';
import { hasBearer } from '../../src/http/metrics-endpoint.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { providerRouteTemplate } from '../../src/oidc/provider-routes.ts';

test("oidc-provider's paths get their route template; any other path gets none", (t) => {
  t.is(providerRouteTemplate('/token'), '/t/:slug/token');
  t.is(providerRouteTemplate('/token/'), '/t/:slug/token');
  t.is(providerRouteTemplate('/.well-known/openid-configuration'), '/t/:slug/.well-known/openid-configuration');
  t.is(providerRouteTemplate('/auth/Jx3k-interaction-uid'), '/t/:slug/auth/:uid');
  t.is(providerRouteTemplate('/session/end/confirm'), '/t/:slug/session/end/confirm');
  t.is(providerRouteTemplate('/device/auth'), '/t/:slug/device/auth');
  for (const path of ['/', '', '/tokens', '/token/x/y', '/auth/a/b', '/../token', '/jwks.json', '/me/x']) {
    t.is(providerRouteTemplate(path), undefined, path);
  }
});

test('a bearer token is accepted only exactly, in the Bearer scheme', (t) => {
  const token = 'f'.repeat(64);
  t.true(hasBearer(`Bearer ${token}`, token));
  t.true(hasBearer(`bearer ${token}`, token));
  for (const header of [
    undefined,
    '',
    'Bearer',
    `Bearer ${token}x`,
    `Bearer ${token.slice(1)}`,
    `Basic ${token}`,
    token,
    `Bearer ${token} extra`,
    `Bearer\t${token}`,
  ]) {
    t.false(hasBearer(header, token), String(header));
  }
});

test('requests are labelled by route template, a known method or OTHER, and the status; every sign-in series starts at 0', async (t) => {
  const metrics = new Metrics();
  metrics.request('GET', '/t/:slug/token', 200, 0.002);
  metrics.request('GET', '/t/:slug/token', 200, 0.004);
  metrics.request('PROPFIND', 'unmatched', 404, 0.001);
  metrics.request('get', 'unmatched', 404, 0.001);
  const { body, contentType } = await metrics.exposition();
  t.regex(contentType, /^text\/plain/);
  t.regex(body, /^tessera_http_requests_total\{method="GET",route="\/t\/:slug\/token",status="200"\} 2$/m);
  t.regex(body, /^tessera_http_requests_total\{method="OTHER",route="unmatched",status="404"\} 2$/m);
  t.regex(body, /^tessera_http_request_duration_seconds_bucket\{le="0\.0025",method="GET",route="\/t\/:slug\/token",status_class="2xx"\} 1$/m);
  t.regex(body, /^tessera_http_request_duration_seconds_count\{method="GET",route="\/t\/:slug\/token",status_class="2xx"\} 2$/m);
  t.regex(body, /^tessera_sign_ins_total\{method="sso_link",outcome="locked"\} 0$/m);
  t.regex(body, /^tessera_sso_sign_ins_total\{type="saml",outcome="proof_required"\} 0$/m);
  t.regex(body, /^tessera_mail_send_failures_total\{final="true"\} 0$/m);
  t.false(body.includes('nodejs_'), 'process metrics only when asked for');
});

test('an SSO answer counts in both the SSO and the sign-in series; two apps keep their metrics apart', async (t) => {
  const a = new Metrics();
  const b = new Metrics();
  a.ssoSignIn('oidc', 'refused');
  a.tokenIssued('client_credentials', 'acme');
  const one = (await a.exposition()).body;
  t.regex(one, /^tessera_sso_sign_ins_total\{type="oidc",outcome="refused"\} 1$/m);
  t.regex(one, /^tessera_sign_ins_total\{method="sso",outcome="refused"\} 1$/m);
  t.regex(one, /^tessera_tokens_issued_total\{grant_type="client_credentials",tenant="acme"\} 1$/m);
  const other = (await b.exposition()).body;
  t.regex(other, /^tessera_sso_sign_ins_total\{type="oidc",outcome="refused"\} 0$/m);
  t.false(other.includes('acme'));
});
