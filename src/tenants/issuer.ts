/** A tenant's issuer: every URL of its OpenID Provider starts here. */
export function issuerOf(publicUrl: string, slug: string) {
  return `${publicUrl}/t/${slug}`;
}
