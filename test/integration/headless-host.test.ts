/** The headless host over real HTTP and WebSocket: loopback only, own origin only, launch secret required, bad input answered, process up. */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createApp } from '../../src/main/app/app.js';
import { startHeadlessHost, type HeadlessHost } from '../../src/main/hosts/headless.js';
import { launchCookieName, newLaunchSecret } from '../../src/main/hosts/launch-secret.js';
import type { NeurowardApp } from '../../src/main/app/types.js';
import { ADMIN, STORE_PASSPHRASE, testConfig } from '../support/harness.js';

let app: NeurowardApp;
let host: HeadlessHost;
const secret = newLaunchSecret();
let cookie = '';

beforeAll(async () => {
  app = await createApp({ config: testConfig(), host: 'headless', log: () => undefined, announce: () => undefined });
  host = await startHeadlessHost(app, { port: 0, rendererDir: path.resolve('test/support/fake-renderer'), launchSecret: secret });
  cookie = `${launchCookieName(host.port)}=${secret}`;
});
afterAll(async () => {
  await host.close();
  await app.close();
});

function open(origin = `http://127.0.0.1:${host.port}`, withCookie = true): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${host.port}/ipc`, { origin, headers: withCookie ? { cookie } : {} });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}
function next(ws: WebSocket): Promise<Record<string, unknown>> {
  return new Promise((resolve) => ws.once('message', (data) => resolve(JSON.parse(String(data)) as Record<string, unknown>)));
}
async function send(ws: WebSocket, message: unknown): Promise<Record<string, unknown>> {
  const reply = next(ws);
  ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  return reply;
}

describe('headless host', () => {
  it('serves the renderer with a strict CSP and refuses foreign Host headers', async () => {
    const res = await fetch(host.url, { headers: { cookie } });
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve) => request({ host: '127.0.0.1', port: host.port, path: '/', headers: { host: 'evil.example:80' } }, (r) => resolve(r.statusCode ?? 0)).end());
    expect(status).toBe(421);
    expect((await fetch(`${host.url}..%2f..%2fpackage.json`, { headers: { cookie } })).status).toBe(404);
  });

  it('refuses WebSockets from another origin', async () => {
    await expect(open('http://evil.example')).rejects.toThrow('HTTP 403');
  });

  it('answers malformed, unknown, wrong-shaped and oversized messages with clear errors and stays up', async () => {
    const ws = await open();
    expect(await send(ws, 'this is not json')).toMatchObject({ id: null, ok: false, error: { code: 'bad-request', message: 'The message is not valid JSON.' } });
    expect(await send(ws, { channel: 'app.status' })).toMatchObject({ id: null, ok: false, error: { code: 'bad-request' } });
    expect(await send(ws, { id: 1, channel: 'fs.readFile', payload: {} })).toMatchObject({ id: 1, ok: false, error: { code: 'unknown-channel' } });
    expect(await send(ws, { id: 2, channel: '__proto__', payload: {} })).toMatchObject({ id: 2, ok: false, error: { code: 'unknown-channel' } });
    const wrong = await send(ws, { id: 3, channel: 'setup.initialize', payload: { admin: { username: 'a' }, demoData: 'yes', extra: 1 } });
    expect(wrong).toMatchObject({ id: 3, ok: false, error: { code: 'bad-request' } });
    const issues = (wrong.error as { issues: { path: string }[] }).issues.map((i) => i.path);
    expect(issues).toEqual(expect.arrayContaining(['admin.username', 'admin.password', 'demoData', '']));
    const big = await send(ws, { id: 4, channel: 'auth.signIn', payload: { username: 'x', password: 'p'.repeat(100_000) } });
    expect(big).toMatchObject({ id: 4, ok: false, error: { code: 'payload-too-large' } });
    // Past the socket's hard limit the socket is closed (1009) but the host carries on.
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send(JSON.stringify({ id: 5, channel: 'app.status', payload: { pad: 'x'.repeat(2 * 1024 * 1024) } }));
    expect(await closed).toBe(1009);
    const again = await open();
    expect(await send(again, { id: 6, channel: 'app.status', payload: {} })).toMatchObject({ id: 6, ok: true, value: { store: 'uninitialized' } });
    again.close();
  });

  it('binds the session to the WebSocket that signed in', async () => {
    const a = await open();
    await send(a, { id: 1, channel: 'setup.initialize', payload: { storePassphrase: STORE_PASSPHRASE, admin: ADMIN, demoData: false } });
    const signedIn = await send(a, { id: 2, channel: 'auth.signIn', payload: { username: ADMIN.username, password: ADMIN.password } });
    expect(signedIn).toMatchObject({ ok: true });
    expect(await send(a, { id: 3, channel: 'users.list', payload: {} })).toMatchObject({ ok: true });
    const b = await open();
    expect(await send(b, { id: 1, channel: 'users.list', payload: {} })).toMatchObject({ ok: false, error: { code: 'unauthenticated' } });
    a.close();
    b.close();
  });
});
