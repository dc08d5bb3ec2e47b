import Router from '@koa/router';
import { z } from 'zod';
import { PasswordRejected, type AccountService } from '../accounts/account.service.ts';
import { ValidationFailed } from '../http/errors.ts';
import type { SignedInUser } from '../http/user-auth.ts';
import { readBody } from '../http/validate.ts';
import type { TenantRuntime } from '../tenants/tenant-runtime.ts';

const ChangePassword = z.strictObject({
  current_password: z.string().min(1, 'required').max(256),
  new_password: z.string().min(1, 'required').max(1000),
});

/** The signed-in user's own API, /t/<slug>/api/v1/me (more arrives with organizations). */
export function meRoutes(deps: { accounts: AccountService }) {
  const router = new Router();

  /**
   * Change password. Every other session and token of the user is revoked; the sign-in this
   * request's token belongs to stays valid.
   */
  router.post('/password', async (ctx) => {
    const body = readBody(ctx, ChangePassword);
    const user = ctx.state.user as SignedInUser;
    const tenantId = (ctx.state.runtime as TenantRuntime).tenant.id;
    try {
      const ok = await deps.accounts.changePassword(tenantId, user.userId, body.current_password, body.new_password, user.grantId);
      if (!ok) throw ValidationFailed('The current password is not right.', [{ field: 'current_password', message: 'is not right' }]);
    } catch (err) {
      if (err instanceof PasswordRejected) throw ValidationFailed(err.message, [{ field: 'new_password', message: err.message }]);
      throw err;
    }
    ctx.status = 204;
  });

  return router;
}
