import Router from '@koa/router';
import type { Context } from 'koa';
import { PutOrgAuthPolicy } from '../admin-api/schemas.ts';
import type { OrgAuthPolicyInput } from '../auth-policy/policy.schemas.ts';
import { SIGN_IN_METHODS } from '../auth-policy/policy.ts';
import type { Render } from '../base/views.ts';
import type { OrgService } from '../orgs/org.service.ts';
import { type FormErrors, noticeFor, parseForm, portalPage } from './forms.ts';
import { type OrgPageContext, orgChange, orgPageContext, requireAbility } from './org-context.ts';

const NOTICES = { saved: 'Sign-in policy saved. It applies to the next token of every member.' };

const POLICY_FIELDS = [
  'mfa_required',
  'mfa_grace_days',
  'method_password',
  'method_passkey',
  'method_sso',
  'sso_required',
  'max_session_age_seconds',
  'upstream_mfa_satisfies',
] as const;

const METHOD_LABELS: Record<(typeof SIGN_IN_METHODS)[number], string> = { password: 'Password', passkey: 'Passkey', sso: 'Single sign-on' };

/** A number field as typed: whole numbers become numbers; anything else goes to the schema as is, which names the problem. */
const numberOrText = (v: string) => (/^-?\d{1,12}$/.test(v) ? Number(v) : v);

/** The form is the whole policy (a PUT): an unticked box is false, an empty number its default. */
function policyInput(values: Record<string, string>): OrgAuthPolicyInput {
  return {
    mfa_required: values.mfa_required === 'on',
    mfa_grace_days: values.mfa_grace_days ? (numberOrText(values.mfa_grace_days) as number) : 0,
    allowed_methods: SIGN_IN_METHODS.filter((m) => values[`method_${m}`] === 'on'),
    sso_required: values.sso_required === 'on',
    max_session_age_seconds: values.max_session_age_seconds ? (numberOrText(values.max_session_age_seconds) as number) : null,
    upstream_mfa_satisfies: values.upstream_mfa_satisfies === 'on',
  };
}

/** The stored policy as the form's values. */
function policyValues(p: Awaited<ReturnType<OrgService['getAuthPolicy']>>): Record<string, string> {
  const on = (b: boolean) => (b ? 'on' : '');
  return {
    mfa_required: on(p.mfa_required),
    mfa_grace_days: String(p.mfa_grace_days),
    ...Object.fromEntries(SIGN_IN_METHODS.map((m) => [`method_${m}`, on(p.allowed_methods.includes(m))])),
    sso_required: on(p.sso_required),
    max_session_age_seconds: p.max_session_age_seconds === null ? '' : String(p.max_session_age_seconds),
    upstream_mfa_satisfies: on(p.upstream_mfa_satisfies),
  };
}

/**
 * The organization's sign-in policy tab: owners and tenant admins change it, admins read it.
 * The same service and schema as the Admin API's auth-policy resource, audited the same.
 */
export function policyPages(deps: { orgs: OrgService; render: Render }) {
  const router = new Router();
  const page = portalPage(deps.render);

  const show = async (ctx: Context, org: OrgPageContext, extra: { values?: Record<string, string>; errors?: FormErrors } = {}, status = 200) => {
    const policy = await deps.orgs.getAuthPolicy(org.tenantId, org.org.id);
    const errors = extra.errors ?? {};
    page(
      ctx,
      'portal/org-policy.njk',
      {
        title: `Sign-in policy · ${org.org.name}`,
        section: 'portal',
        tab: 'policy',
        org,
        policy,
        values: extra.values ?? policyValues(policy),
        errors,
        formError: errors._form ?? (Object.keys(errors).length ? 'The policy was not saved: see the fields below.' : undefined),
        methods: SIGN_IN_METHODS.map((m) => ({ value: m, name: `method_${m}`, label: METHOD_LABELS[m] })),
        notice: noticeFor(ctx, NOTICES),
      },
      status,
    );
  };

  router.get('/organizations/:orgId/sign-in-policy', async (ctx) => {
    const org = await orgPageContext(ctx, deps.orgs);
    requireAbility(org, 'manage', 'see the sign-in policy');
    await show(ctx, org);
  });

  router.post(
    '/organizations/:orgId/sign-in-policy',
    orgChange(
      deps.orgs,
      { ability: 'configureAuthPolicy', what: 'change the sign-in policy', back: 'sign-in-policy', show, fields: POLICY_FIELDS },
      async (_ctx, org, values) => {
        const input = parseForm(PutOrgAuthPolicy, policyInput(values));
        await deps.orgs.setAuthPolicy(org.tenantId, { type: 'user', id: org.viewer.user.id }, org.org.id, input, 'put');
        return 'saved';
      },
    ),
  );

  return router;
}
