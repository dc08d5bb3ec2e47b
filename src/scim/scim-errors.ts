import { AppError } from '../base/errors.ts';

/** RFC 7644 §3.12: the `scimType` of a 400 (and of 409's `uniqueness`) tells a directory what to fix. */
export type ScimType =
  | 'invalidFilter'
  | 'tooMany'
  | 'uniqueness'
  | 'mutability'
  | 'invalidSyntax'
  | 'invalidPath'
  | 'noTarget'
  | 'invalidValue'
  | 'invalidVers'
  | 'sensitive';

export const SCIM_ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

/** A refusal in SCIM's words; an AppError, so code below the SCIM routes may throw it like any other. */
export function scimError(status: number, scimType: ScimType | undefined, detail: string): AppError {
  return new AppError(status, scimType ?? 'scim_error', 'SCIM error', detail, undefined, undefined, scimType ? { scimType } : undefined);
}

export const InvalidValue = (detail: string) => scimError(400, 'invalidValue', detail);
export const InvalidSyntax = (detail: string) => scimError(400, 'invalidSyntax', detail);
export const InvalidFilter = (detail: string) => scimError(400, 'invalidFilter', detail);
export const Uniqueness = (detail: string) => scimError(409, 'uniqueness', detail);

/** The SCIM error document (RFC 7644 §3.12) of any error the app raised; `status` is a string there. */
export function scimErrorBody(err: AppError) {
  const scimType = err.extensions?.scimType;
  return {
    schemas: [SCIM_ERROR_SCHEMA],
    status: String(err.status),
    ...(typeof scimType === 'string' ? { scimType } : {}),
    detail: err.detail,
  };
}
