/**
 * The headless host tried as a hostile local process would (security review, issue 7): the launch key,
 * thousands of arbitrary envelopes, too many calls in flight, a flood of junk. After each the host
 * must still answer a valid call, and the ledger must stay small and intact.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createApp } from '../../src/main/app/app.js';
import { startHeadlessHost, type HeadlessHost } from '../../src/main/hosts/headless.js';
import { launchCookieName, newLaunchSecret } from '../../src/main/hosts/launch-secret.js';
import type { NeurowardApp } from '../../src/main/app/types.js';
import { CHANNEL_NAMES } from '../../src/shared/ipc.js';
import { mulberry32 } from '../../src/shared/random.js';
import { ADMIN, STORE_PASSPHRASE, testConfig } from '../support/harness.js';

let app: NeurowardApp;
let host: HeadlessHost;
const secret = newLaunchSecret();
let cookie = '';
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  app = await createApp({ config: testConfig(), host: 'headless', log: () => undefined, announce: () => undefined });
  host = await startHeadlessHost(app, { port: 0, rendererDir: path.resolve('test/support/fake-renderer'), launchSecret: secret });
  cookie = `${launchCookieName(host.port)}=${secret}`;
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await host?.close();
  await app?.close();
});

type Reply = Record<string, unknown>;

/** A WebSocket client that matches replies to requests by id (replies to frames without an id come as id null, in order). */
class Client {
  private readonly waiting = new Map<number, (reply: Reply) => void>();
  private readonly waitingNull: ((reply: Reply) => void)[] = [];
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const reply = JSON.parse(String(data)) as Reply;
      if (!('id' in reply)) return; // an event
      if (reply.id === null) this.waitingNull.shift()?.(reply);
      else {
        this.waiting.get(reply.id as number)?.(reply);
        this.waiting.delete(reply.id as number);
      }
    });
  }
  static open(headers: Record<string, string> = { cookie }): Promise<Client> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${host.port}/ipc`, { origin: `http://127.0.0.1:${host.port}`, headers });
      ws.once('open', () => resolve(new Client(ws)));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }
  /** Sends raw text; `id` is the reply id to wait for (null when the frame has no usable id). */
  sendRaw(text: string, id: number | null): Promise<Reply> {
    return new Promise((resolve) => {
      if (id === null) this.waitingNull.push(resolve);
      else this.waiting.set(id, resolve);
      this.ws.send(text);
    });
  }
  private nextId = 1_000_000;
  call(channel: string, payload: unknown): Promise<Reply> {
    const id = this.nextId++;
    return this.sendRaw(JSON.stringify({ id, channel, payload }), id);
  }
  close(): void {
    this.ws.close();
  }
}

/** Arbitrary JSON, biased towards what breaks code: method names as keys, __proto__, deep nesting, lone surrogates, huge strings. */
function arbitraryJson(random: () => number, depth = 0): unknown {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const nastyKeys = ['toString', 'valueOf', '__proto__', 'constructor', 'hasOwnProperty', 'toJSON', 'then', 'length', 'id', 'channel', 'payload', 'prototype'];
  const nastyStrings = ['', 'x', 'nope\ud800', '\udc00', '\ud83d', '\u0000', 'auth.signIn', '__proto__', 'constructor', 'a'.repeat(20_000), '${x}', '%s%n', '../../etc/passwd', '\u202e'];
  const roll = random();
  if (depth > 6 || roll < 0.35) {
    return pick<unknown>([null, true, false, 0, -0, 1, -1, 1e308, -1e308, 2 ** 53, 0.1, random() * 1e6, pick(nastyStrings), pick(CHANNEL_NAMES), String.fromCharCode(0xd800 + Math.floor(random() * 0x800))]);
  }
  if (roll < 0.55) {
    const length = Math.floor(random() * (depth === 0 ? 50 : 5));
    return Array.from({ length }, () => arbitraryJson(random, depth + 1));
  }
  const object: Record<string, unknown> = {};
  const keys = Math.floor(random() * 6);
  for (let i = 0; i < keys; i += 1) object[random() < 0.6 ? pick(nastyKeys) : pick(nastyStrings).slice(0, 40)] = arbitraryJson(random, depth + 1);
  return object;
}

/** JSON text for one envelope: the id, the channel and the payload each sometimes valid, sometimes anything. */
function arbitraryEnvelope(random: () => number, id: number, channels: readonly string[]): { text: string; replyId: number | null } {
  const useId = random() < 0.85;
  const channel = random() < 0.5 ? channels[Math.floor(random() * channels.length)] : arbitraryJson(random, 3);
  const envelope: Record<string, unknown> = useId ? { id } : { id: arbitraryJson(random, 5) };
  envelope[random() < 0.1 ? '__proto__' : 'channel'] = channel;
  envelope['payload'] = arbitraryJson(random);
  // JSON.stringify would drop a `__proto__` own key set through assignment; write it as text the way an attacker would.
  let text = JSON.stringify(envelope);
  if (random() < 0.05) text = `{"id":${id},"channel":{"toString":"x"},"payload":{"__proto__":{"polluted":1}}}`;
  if (random() < 0.03) text = `{"id":${id},"channel":"auth.signIn","payload":{"valueOf":{},"toString":null,"username":"x","password":"y"}}`;
  return { text, replyId: useId && !text.startsWith('{"id":{') ? id : null };
}

async function fuzz(client: Client, seed: number, count: number, channels: readonly string[]): Promise<{ sent: number; answered: number }> {
  const random = mulberry32(seed);
  let answered = 0;
  for (let i = 0; i < count; i += 1) {
    const { text, replyId } = arbitraryEnvelope(random, i + 1, channels);
    const parsed = JSON.parse(text) as Record<string, unknown>;
    const id = typeof parsed.id === 'number' && Number.isSafeInteger(parsed.id) ? parsed.id : null;
    const reply = await client.sendRaw(text, replyId === null ? id : replyId);
    expect(reply).toHaveProperty('ok');
    if (reply.ok === false) expect((reply.error as { code: string }).code).toEqual(expect.any(String));
    answered += 1;
  }
  return { sent: count, answered };
}

describe('the per-launch key', () => {
  it('refuses every HTTP request and the WebSocket without it (401), and trades the key in the address for a strict cookie', async () => {
    const bare = await fetch(host.url, { redirect: 'manual' });
    expect(bare.status).toBe(401);
    expect(await bare.text()).toContain('Open NeuroWard from the address it printed');
    expect((await fetch(`${host.url}assets/app.js`, { redirect: 'manual' })).status).toBe(401);
    expect((await fetch(`${host.url}?launch=not-the-key`, { redirect: 'manual' })).status).toBe(401);
    await expect(Client.open({})).rejects.toThrow('HTTP 401');
    await expect(Client.open({ cookie: `${launchCookieName(host.port)}=${newLaunchSecret()}` })).rejects.toThrow('HTTP 401');

    const traded = await fetch(`${host.url}?launch=${secret}&frametimes=1`, { redirect: 'manual' });
    expect(traded.status).toBe(303);
    expect(traded.headers.get('location')).toBe('/?frametimes=1');
    const setCookie = traded.headers.get('set-cookie') ?? '';
    expect(setCookie).toContain(`${launchCookieName(host.port)}=${secret}`);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(host.launchUrl).toBe(`${host.url}?launch=${secret}`);

    expect((await fetch(host.url, { headers: { cookie } })).status).toBe(200);
    const client = await Client.open();
    expect(await client.call('app.status', {})).toMatchObject({ ok: true });
    client.close();
  });

  it('does not serve source maps', async () => {
    expect((await fetch(`${host.url}index.html.map`, { headers: { cookie } })).status).toBe(404);
  });
});

describe('arbitrary envelopes', () => {
  it('the exact message of the review gets a clean error, not a dead host', async () => {
    const client = await Client.open();
    const reply = await client.sendRaw('{"id":1,"channel":{"toString":"x"},"payload":{}}', 1);
    expect(reply).toMatchObject({ id: 1, ok: false, error: { code: 'unknown-channel', message: 'Unknown channel an object.' } });
    expect(await client.sendRaw('[1,2,3]', null)).toMatchObject({ id: null, ok: false, error: { code: 'bad-request' } });
    expect(await client.sendRaw('{"id":2,"channel":"app.status","payload":{"__proto__":{"x":1}}}', 2)).toMatchObject({ id: 2, ok: false, error: { code: 'bad-request' } });
    expect(await client.call('app.status', {})).toMatchObject({ ok: true });
    client.close();
  });

  const PER_PHASE = 1500;
  it(`${PER_PHASE * 3} envelopes before setup, after setup without a session, and signed in: each answered, host still up, ledger small and intact`, async () => {
    const before = await Client.open();
    const beforeSetup = await fuzz(before, 1, PER_PHASE, CHANNEL_NAMES);
    expect(await before.call('app.status', {})).toMatchObject({ ok: true, value: { store: 'uninitialized' } });

    const setup = await before.call('setup.initialize', { storePassphrase: STORE_PASSPHRASE, admin: ADMIN, demoData: false });
    expect(setup).toMatchObject({ ok: true });
    const anonymous = await Client.open();
    const noSession = await fuzz(anonymous, 2, PER_PHASE, CHANNEL_NAMES);

    const admin = await Client.open();
    expect(await admin.call('auth.signIn', { username: ADMIN.username, password: ADMIN.password })).toMatchObject({ ok: true });
    // Signed in: anything but the calls that would end the session under test.
    const signedIn = await fuzz(admin, 3, PER_PHASE, CHANNEL_NAMES.filter((c) => c !== 'auth.signOut' && c !== 'auth.lock'));
    const total = beforeSetup.answered + noSession.answered + signedIn.answered;
    expect(total).toBe(PER_PHASE * 3);

    // The host answers a valid call afterwards, on a fresh socket too.
    expect(await admin.call('users.list', {})).toMatchObject({ ok: true });
    const fresh = await Client.open();
    expect(await fresh.call('app.status', {})).toMatchObject({ ok: true, value: { store: 'ready' } });

    // The ledger: well-formed (lone surrogates in channel names are stored as they were hashed), and small.
    const verify = await admin.call('audit.verify', {});
    expect(verify).toMatchObject({ ok: true, value: { ok: true } });
    const entries = (verify.value as { entries: number }).entries;
    expect(entries).toBeLessThan(300);
    console.log(`fuzz: ${total} envelopes answered (3 phases × ${PER_PHASE}); ${entries} audit entries; unhandled rejections: ${unhandled.length}`);
    expect(unhandled).toEqual([]);
    for (const c of [before, anonymous, admin, fresh]) c.close();
  }, 180_000);
});

describe('limits', () => {
  it('caps the calls one socket has in flight, and the host carries on', async () => {
    const client = await Client.open();
    // scrypt sign-ins are slow: 80 sent at once stay in flight together (right password: no lockout, no back-off).
    const replies = await Promise.all(Array.from({ length: 80 }, () => client.call('auth.signIn', { username: ADMIN.username, password: ADMIN.password })));
    const limited = replies.filter((r) => (r.error as { code?: string } | undefined)?.code === 'rate-limited');
    expect(limited.length).toBeGreaterThan(0);
    expect(limited.some((r) => (r.error as { message: string }).message.includes('in flight'))).toBe(true);
    expect(await client.call('app.status', {})).toMatchObject({ ok: true });
    client.close();
  }, 60_000);

  it('10,000 junk messages write a bounded number of audit entries', async () => {
    const admin = await Client.open();
    // A separate source budget is per peer address: every client here is 127.0.0.1, as a local attacker would be.
    const junk = await Client.open();
    const count = async () => ((await admin.call('audit.list', { limit: 1 })).value as { total: number }).total;
    await admin.call('auth.signIn', { username: ADMIN.username, password: ADMIN.password });
    const before = await count();
    for (let i = 0; i < 10_000; i += 1) {
      if (i % 3 === 0) await junk.sendRaw('not json', null);
      else await junk.call(i % 3 === 1 ? `junk.${i}` : 'users.list', { i });
    }
    const after = await count();
    console.log(`junk: 10000 messages → ${after - before} audit entries`);
    expect(after - before).toBeLessThanOrEqual(40);
    // Refusals at the door are audited too, like any refusal: bad frames, and the 401s of the first test
    // (made before setup, written when the store was created), once per source and minute, not per request.
    const ofAction = async (action: string) => (await admin.call('audit.list', { limit: 50, action })).value as { total: number; entries: { outcome: string; outcomeDetail: string }[] };
    const badFrames = await ofAction('ipc.bad-frame');
    expect(badFrames.total).toBeGreaterThanOrEqual(1);
    expect(badFrames.entries[0]).toMatchObject({ outcome: 'denied' });
    const noKey = await ofAction('host.no-launch-secret');
    expect(noKey.total).toBe(1);
    expect(noKey.entries[0]!.outcomeDetail).toMatch(/^unauthenticated: .*\(refused: 401\)/);
    expect(await junk.call('app.status', {})).toMatchObject({ ok: true });
    admin.close();
    junk.close();
  }, 120_000);
});
