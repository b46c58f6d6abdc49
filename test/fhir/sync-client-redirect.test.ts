/**
 * The sync client sends each Request as built (server-client.ts: `redirect: 'error'`, which spares fetch a
 * clone of every body): a server that answers with a redirect is a clear error for that server, nothing
 * is marked sent, and the real server behind the redirect receives nothing (a followed 301/302 would have
 * turned the POSTed Bundle into a GET elsewhere).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { startSyncRig, testPatient, type SyncRig } from '../support/sync-rig.js';

let rig: SyncRig | undefined;
let redirector: http.Server | undefined;
afterEach(async () => {
  await rig?.close();
  await new Promise<void>((resolve) => (redirector ? redirector.close(() => resolve()) : resolve()));
  rig = undefined;
  redirector = undefined;
});

it('a redirecting server: "unexpected redirect" for that server, nothing sent, nothing marked sent', async () => {
  rig = await startSyncRig();
  const target = rig.server.baseUrl;
  let redirected = 0;
  redirector = http.createServer((req, res) => {
    redirected += 1;
    req.resume();
    res.writeHead(307, { location: `${target}${(req.url ?? '/').replace(/^\/fhir\/R4/, '')}`, 'content-length': 0 });
    res.end();
  });
  await new Promise<void>((resolve) => redirector!.listen(0, '127.0.0.1', resolve));
  const engine = rig.engine([{ baseUrl: `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/fhir/R4`, timeoutMs: 5_000 }]);
  for (let i = 0; i < 2; i++) rig.truth.put(testPatient(`rd${i}`, `Fam${i}`), 'create');
  const report = await engine.runOnce({ force: true });
  expect(report.servers[0]).toMatchObject({ state: 'failed', sent: 0 });
  expect(report.servers[0]!.error).toMatch(/server-1: POST batch Bundle of 2: cannot reach http:\/\/127\.0\.0\.1:\d+\/fhir\/R4 \(unexpected redirect\)/);
  expect(redirected).toBe(1);
  expect(rig.server.repo.current('Patient', 'rd0')).toBeFalsy();
  expect(engine.status()[0]!.pending).toBe(2);
});
