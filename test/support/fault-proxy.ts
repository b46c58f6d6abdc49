/**
 * A fault-injecting HTTP proxy between the sync engine and the loopback FHIR server. For each request a
 * plan (a function the test sets) picks what happens: pass it through, drop the connection before or
 * after the server committed, answer 500/503/429 (with Retry-After) instead of or after the server,
 * delay it, answer HTML, cut entries out of a Bundle response, or run something first (a concurrent edit
 * on the server, so the real router answers 412). "Link down" closes the listening port (connection refused).
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ProxiedRequest {
  /** 0-based count of requests the proxy saw. */
  index: number;
  method: string;
  url: string;
  body: unknown;
}

export type Fault =
  | { kind: 'pass' }
  /** The request is read, then the connection is destroyed: the server never sees it. */
  | { kind: 'drop-before' }
  /** The server processes the request completely (it committed); the answer is never delivered. */
  | { kind: 'drop-after' }
  /** Answers `status` without forwarding, or (`afterServer`) after the server processed the request. */
  | { kind: 'status'; status: number; retryAfter?: string; afterServer?: boolean }
  /** Waits, then forwards. */
  | { kind: 'delay'; ms: number }
  /** Forwards at once (the server commits), delivers the answer after `ms`. */
  | { kind: 'delay-answer'; ms: number }
  /**
   * Forwards at once (the server commits) and holds the answer until the client has given up on it (its
   * connection closed: a timeout or abort), however long that takes on a loaded machine; `capMs` (default
   * 60 s) bounds the wait for a client that never gives up, which then gets the answer late.
   */
  | { kind: 'answer-after-client-gave-up'; capMs?: number }
  /** Answers 200 with an HTML page (a captive portal, a web server at the wrong URL). */
  | { kind: 'html'; status?: number }
  /** Forwards, then removes the last `drop` entries from the Bundle the server answered. */
  | { kind: 'short-bundle'; drop: number }
  /** The server receives `body(request.body)` instead of what was sent (e.g. to make the real server refuse an entry). */
  | { kind: 'rewrite'; body: (body: unknown) => unknown }
  /** Forwards (the server commits), runs `run` (e.g. kill the client process), then delivers the answer if anyone still listens. */
  | { kind: 'after-server'; run: () => Promise<void> }
  /** Runs `before` (e.g. an edit straight on the server), then applies `then`. */
  | { kind: 'before'; run: (request: ProxiedRequest) => Promise<void>; then: Fault };

export interface FaultLogEntry {
  index: number;
  method: string;
  url: string;
  fault: Fault['kind'];
  /** Status the server answered, when the request reached it. */
  serverStatus: number | null;
  /** The request body as JSON (for the tests' checks and failure messages). */
  body: unknown;
}

export interface FaultProxy {
  port: number;
  /** The upstream base URL with the proxy's host and port. */
  baseUrl: string;
  setPlan(plan: (request: ProxiedRequest) => Fault): void;
  setLinkDown(down: boolean): Promise<void>;
  log: FaultLogEntry[];
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'content-length']);

export async function startFaultProxy(upstreamBaseUrl: string): Promise<FaultProxy> {
  const upstream = new URL(upstreamBaseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let plan: (request: ProxiedRequest) => Fault = () => ({ kind: 'pass' });
  let count = 0;
  const log: FaultLogEntry[] = [];
  const sockets = new Set<Socket>();

  function forward(req: http.IncomingMessage, body: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
      headers['content-length'] = body.length;
      const out = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      out.on('error', reject);
      out.end(body);
    });
  }

  function reply(res: http.ServerResponse, status: number, headers: http.IncomingHttpHeaders | http.OutgoingHttpHeaders, body: Buffer | string): void {
    const out: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) out[k] = v;
    out['content-length'] = Buffer.byteLength(body);
    res.writeHead(status, out);
    res.end(body);
  }

  const outcome = (status: number, text: string) =>
    JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: status === 429 ? 'throttled' : 'transient', details: { text } }] });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
    let parsed: unknown;
    try {
      parsed = body.length ? JSON.parse(body.toString('utf8')) : undefined;
    } catch {
      parsed = undefined;
    }
    const request: ProxiedRequest = { index: count++, method: req.method ?? 'GET', url: req.url ?? '/', body: parsed };
    let fault = plan(request);
    const entry: FaultLogEntry = { index: request.index, method: request.method, url: request.url, fault: fault.kind, serverStatus: null, body: parsed };
    log.push(entry);
    while (fault.kind === 'before') {
      await fault.run(request);
      fault = fault.then;
      entry.fault = fault.kind;
    }
    const pass = async () => {
      const answer = await forward(req, body);
      entry.serverStatus = answer.status;
      return answer;
    };
    switch (fault.kind) {
      case 'rewrite': {
        const answer = await forward(req, Buffer.from(JSON.stringify(fault.body(parsed))));
        entry.serverStatus = answer.status;
        reply(res, answer.status, answer.headers, answer.body);
        return;
      }
      case 'pass': {
        const answer = await pass();
        reply(res, answer.status, answer.headers, answer.body);
        return;
      }
      case 'drop-before':
        req.socket.destroy();
        return;
      case 'after-server': {
        const answer = await pass();
        await fault.run();
        if (!res.destroyed) reply(res, answer.status, answer.headers, answer.body);
        return;
      }
      case 'drop-after':
        await pass();
        req.socket.destroy();
        return;
      case 'status': {
        if (fault.afterServer) await pass();
        reply(res, fault.status, { 'content-type': 'application/fhir+json', ...(fault.retryAfter ? { 'retry-after': fault.retryAfter } : {}) }, outcome(fault.status, `injected HTTP ${fault.status}`));
        return;
      }
      case 'delay': {
        await new Promise((r) => setTimeout(r, fault.ms));
        const answer = await pass();
        if (!res.destroyed) reply(res, answer.status, answer.headers, answer.body);
        return;
      }
      case 'delay-answer': {
        const answer = await pass();
        await new Promise((r) => setTimeout(r, fault.ms));
        if (!res.destroyed) reply(res, answer.status, answer.headers, answer.body);
        return;
      }
      case 'answer-after-client-gave-up': {
        const answer = await pass();
        if (!res.destroyed) {
          await new Promise<void>((resolve) => {
            const cap = setTimeout(resolve, fault.capMs ?? 60_000);
            res.once('close', () => {
              clearTimeout(cap);
              resolve();
            });
          });
        }
        if (!res.destroyed) reply(res, answer.status, answer.headers, answer.body);
        return;
      }
      case 'html':
        reply(res, fault.status ?? 200, { 'content-type': 'text/html; charset=utf-8' }, '<!doctype html><html><head><title>Sign in to the guest network</title></head><body><h1>Welcome</h1></body></html>');
        return;
      case 'short-bundle': {
        const answer = await pass();
        const bundle = JSON.parse(answer.body.toString('utf8')) as { entry?: unknown[] };
        bundle.entry = (bundle.entry ?? []).slice(0, Math.max(0, (bundle.entry ?? []).length - fault.drop));
        reply(res, answer.status, answer.headers, JSON.stringify(bundle));
        return;
      }
    }
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks)).catch((error: unknown) => {
        if (!res.headersSent && !res.destroyed) reply(res, 502, { 'content-type': 'text/plain' }, `proxy: ${String(error)}`);
      });
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.keepAliveTimeout = 30_000;

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  let down = false;

  return {
    port,
    baseUrl: `http://127.0.0.1:${port}${upstream.pathname.replace(/\/$/, '')}`,
    log,
    setPlan(next) {
      plan = next;
    },
    async setLinkDown(value) {
      if (value === down) return;
      down = value;
      if (value) {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await closed;
      } else await listen(port);
    },
    async close() {
      agent.destroy();
      for (const socket of sockets) socket.destroy();
      if (!down) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
