import { z } from 'zod';
import { fields } from '../base/validate.ts';
import { userFields } from './user-fields.ts';

// What creating and changing a user takes: the Admin API validates (and documents) requests with
// these, and the service's input types are derived from them.

const optionalText = z.string().trim().max(200, 'must be at most 200 characters').nullable().optional();

export const CreateUser = z.strictObject({
  email: userFields.email,
  password: userFields.password.optional(),
  name: fields.name.optional(),
  given_name: fields.name.optional(),
  family_name: fields.name.optional(),
  email_verified: z.boolean().optional(),
  tenant_admin: z.boolean().optional(),
});

export const UpdateUser = z
  .strictObject({
    email: userFields.email.optional(),
    password: userFields.password.optional(),
    name: optionalText,
    given_name: optionalText,
    family_name: optionalText,
    email_verified: z.boolean().optional(),
    disabled: z.boolean().optional(),
    tenant_admin: z.boolean().optional(),
  })
  .refine((v) => Object.keys(v).length > 0, 'send at least one field to change');

export type CreateUserInput = z.output<typeof CreateUser>;
export type UpdateUserInput = z.output<typeof UpdateUser>;
