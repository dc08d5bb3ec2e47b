import { z } from 'zod';
import { parseEmail } from './email-address.ts';
import { passwordProblem } from './password-policy.ts';

/** The users' rules as request fields, for every schema that takes an email or a password. */
export const userFields = {
  /**
   * An email address by the one rule (email-address.ts); the output is the address to store.
   * The published schema can only sketch the rule (one @, no spaces).
   */
  email: z
    .string()
    .max(320, 'must be a valid email address: it is too long')
    .transform((s, ctx) => {
      const parsed = parseEmail(s);
      if (parsed.ok) return parsed.email.address;
      ctx.addIssue({ code: 'custom', message: `must be a valid email address: it ${parsed.problem}` });
      return z.NEVER;
    })
    .meta({ format: 'email', pattern: '^\\s*[^@\\s]+@[^@\\s]+\\s*$' }),
  password: z.string().superRefine((p, ctx) => {
    const problem = passwordProblem(p);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
};
