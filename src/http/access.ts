/**
 * Who may do what. The HTTP layer asks before every operation; the
 * implementation (users, tokens, permissions by repository glob) is configured
 * at the composition root. Throws RegistryError UNAUTHORIZED (no or bad
 * credentials; `detail.challenge` carries the WWW-Authenticate value) or DENIED.
 */
export type Action = 'pull' | 'push' | 'delete' | 'discover' | 'admin';

export interface AccessRequest {
  readonly authorization: string | undefined;
  readonly remoteAddress: string | undefined;
  /** Host header and scheme, for the realm of a WWW-Authenticate challenge. */
  readonly host?: string;
  readonly scheme?: string;
  /** `cert:<CN>` of a client certificate that verified against `tls.clientCA` (mTLS), if any. */
  readonly clientCert?: string | undefined;
}

export interface Principal {
  /** Recorded as the actor of tag moves and audit entries. */
  readonly actor: string;
}

export interface Access {
  authorize(req: AccessRequest, repository: string | undefined, action: Action): Promise<Principal>;
  /** The WWW-Authenticate value that tells a client where to get a token (for `action` on `repository`, when given). */
  challenge(req: AccessRequest, repository?: string, action?: Action): string;
  /** May this principal read `repository` (cross-repository mounts)? */
  mayPull(principal: Principal, req: AccessRequest, repository: string): Promise<boolean>;
}

/** No access control at all: only for tests that exercise the spec alone. */
export const OPEN_ACCESS: Access = {
  authorize: async () => ({ actor: 'anonymous' }),
  mayPull: async () => true,
  challenge: () => 'Basic realm="customs"',
};
