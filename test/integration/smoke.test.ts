import { describe, expect, it } from 'vitest';
import { setUpWorkstation } from '../support/harness.js';

describe('smoke', () => {
  it('sets up and signs in', async () => {
    const ws = await setUpWorkstation();
    const { connection, session } = await ws.signInAs('nurse');
    expect(session.user.role).toBe('nurse');
    const list = await connection.ok('patients.list', {});
    expect(list.patients.length).toBeGreaterThan(3);
    await ws.app.close();
  });
});
