/**
 * A real OAuth 2 authorization server on loopback for the SMART Backend Services tests: panva's
 * oidc-provider 8.8.1 (8.x supports Node 18+; 9.x wants Node 22), certified OpenID/OAuth code not
 * written here. It issues client_credentials tokens to clients that authenticate with private_key_jwt
 * (RS384/ES384) against the public JWKS they were registered with, and checks the assertion's
 * signature, iss/sub/aud/exp and that its jti was not used before.
 *
 * The loopback FHIR server is its resource server: it asks the provider's introspection endpoint
 * (RFC 7662), over HTTP, whether each request's token is active.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import Provider, { type ClientMetadata } from 'oidc-provider';
import { Agent, fetch } from 'undici';

export interface SmartClientRegistration {
  clientId: string;
  /** The public keys the clinic registered for the client (its JWKS). */
  jwks: JsonWebKey[];
  alg: 'RS384' | 'ES384';
  scope?: string;
}

export interface LoopbackOAuthServer {
  issuer: string;
  tokenUrl: string;
  /** POSTs to the token endpoint, answered or refused. */
  tokenRequests: number;
  /** Access tokens the provider issued. */
  issued: number;
  /** Lifetime of new access tokens, seconds (changeable between passes). */
  ttlSeconds: number;
  /** The resource server's check: asks the introspection endpoint whether `Bearer <token>` is active. */
  introspect(authorization: string | undefined): Promise<boolean>;
  /** Revokes an issued access token at the provider (as an administrator would). */
  revoke(token: string): Promise<void>;
  close(): Promise<void>;
}

const RESOURCE_SERVER = { clientId: 'loopback-fhir-server', secret: 'resource-server-secret-0123456789abcdef0123456789' };
const SCOPES = ['system/*.cruds', 'system/*.rs'];

/** `tls`: serve HTTPS with this certificate and key (PEM, signed by `ca`) instead of plain HTTP. */
export async function startLoopbackOAuthServer(clients: SmartClientRegistration[], options: { tls?: { cert: string; key: string; ca: string } } = {}): Promise<LoopbackOAuthServer> {
  const server = options.tls ? https.createServer({ cert: options.tls.cert, key: options.tls.key }) : http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const issuer = `${options.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // The provider's own signing key (for ID tokens it never issues here); given so it does not warn.
  const signingKey = { ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }), kid: 'provider-1', use: 'sig' };
  const metadata: ClientMetadata[] = [
    ...clients.map(
      (c): ClientMetadata => ({
        client_id: c.clientId,
        token_endpoint_auth_method: 'private_key_jwt',
        token_endpoint_auth_signing_alg: c.alg,
        jwks: { keys: c.jwks as never[] },
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: c.scope ?? SCOPES.join(' '),
      }),
    ),
    { client_id: RESOURCE_SERVER.clientId, client_secret: RESOURCE_SERVER.secret, token_endpoint_auth_method: 'client_secret_basic', grant_types: [], response_types: [], redirect_uris: [] },
  ];
  const state = { tokenRequests: 0, issued: 0, ttlSeconds: 300 };
  const provider = new Provider(issuer, {
    clients: metadata,
    jwks: { keys: [signingKey as never] },
    cookies: { keys: ['loopback-oauth-cookie-key-0123456789'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: (_ctx, client) => client.clientId === RESOURCE_SERVER.clientId },
      revocation: { enabled: true },
    },
    enabledJWA: { clientAuthSigningAlgValues: ['RS384', 'ES384'] },
    scopes: SCOPES,
    ttl: { ClientCredentials: () => state.ttlSeconds },
  });
  // Opaque access tokens are stored by the provider: "saved" is the event of each one issued.
  provider.on('client_credentials.saved', () => {
    state.issued += 1;
  });
  const handle = provider.callback();
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.method === 'POST' && req.url === '/token') state.tokenRequests += 1;
    void handle(req, res);
  });
  // The resource server trusts the test CA that signed an HTTPS provider's certificate.
  const dispatcher = options.tls ? new Agent({ connect: { ca: options.tls.ca } }) : undefined;
  const basic = `Basic ${Buffer.from(`${RESOURCE_SERVER.clientId}:${RESOURCE_SERVER.secret}`).toString('base64')}`;

  return {
    issuer,
    tokenUrl: `${issuer}/token`,
    get tokenRequests() {
      return state.tokenRequests;
    },
    get issued() {
      return state.issued;
    },
    get ttlSeconds() {
      return state.ttlSeconds;
    },
    set ttlSeconds(value: number) {
      state.ttlSeconds = value;
    },
    async introspect(authorization) {
      const match = /^Bearer (\S+)$/.exec(authorization ?? '');
      if (!match) return false;
      const answer = await fetch(`${issuer}/token/introspection`, {
        ...(dispatcher ? { dispatcher } : {}),
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic },
        body: new URLSearchParams({ token: match[1]! }).toString(),
      });
      const body = (await answer.json()) as { active?: unknown };
      return answer.ok && body.active === true;
    },
    async revoke(token) {
      const found = await provider.ClientCredentials.find(token);
      if (!found) throw new Error('no such token at the provider');
      await found.destroy();
    },
    close: async () => {
      await dispatcher?.close();
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
