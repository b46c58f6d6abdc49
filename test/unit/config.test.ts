/** Configuration: the embedded default, overrides, and errors that name the setting and its source. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_PORT, defaultUserDataDir, loadConfig } from '../../src/main/app/config.js';
import { tempDir } from '../support/harness.js';

const home = { HOME: '/home/someone' };

describe('config', () => {
  it('runs on the embedded default with no config at all', () => {
    const config = loadConfig([], { ...home, XDG_CONFIG_HOME: '/home/someone/.config' });
    expect(config).toMatchObject({
      dataDir: '/home/someone/.config/NeuroWard',
      configFile: null,
      demo: true,
      port: DEFAULT_PORT,
      passphrase: { source: 'auto', fromEnv: null },
      mqttUrl: null,
      fhirServers: [],
      security: { idleLockMs: 600_000, maxFailedSignIns: 5 },
    });
  });

  it('takes a set passphrase variable as the choice of the env source when no source is configured', () => {
    expect(loadConfig([], { ...home, NEUROWARD_STORE_PASSPHRASE: 'a long enough passphrase' }).passphrase).toMatchObject({ source: 'env', fromEnv: 'a long enough passphrase' });
    // A configured source still wins.
    expect(loadConfig([], { ...home, NEUROWARD_STORE_PASSPHRASE: 'x', NEUROWARD_PASSPHRASE_SOURCE: 'prompt' }).passphrase.source).toBe('prompt');
  });

  it('finds the user data dir like Electron does on each platform', () => {
    expect(defaultUserDataDir({ APPDATA: 'C:\\Users\\a\\AppData\\Roaming' }, 'win32')).toContain('NeuroWard');
    expect(defaultUserDataDir({}, 'darwin')).toMatch(/Library\/Application Support\/NeuroWard$/);
  });

  it('reads the config file in the data dir, then environment variables, then flags', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'neuroward.config.json'), JSON.stringify({ host: { port: 5000 }, fhir: { servers: [{ name: 'regional', baseUrl: 'https://fhir.example.org/r4' }] } }));
    const config = loadConfig(['--data-dir', dir, '--port', '5002'], { ...home, NEUROWARD_IDLE_LOCK_MINUTES: '3' });
    expect(config).toMatchObject({ dataDir: dir, configFile: path.join(dir, 'neuroward.config.json'), demo: false, port: 5002, security: { idleLockMs: 180_000 } });
    expect(config.fhirServers).toEqual([{ name: 'regional', baseUrl: 'https://fhir.example.org/r4', tokenEnv: null }]);
  });

  it('names the bad setting and the file it came from', () => {
    const dir = tempDir();
    const file = path.join(dir, 'site.json');
    writeFileSync(file, JSON.stringify({ security: { idleLockMinutes: 500 }, mqtt: { url: 'http://broker' } }));
    const error = (() => {
      try {
        loadConfig(['--config', file], home);
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('no error');
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain(`setting "security.idleLockMinutes" (in ${file})`);
    expect(error.message).toContain(`setting "mqtt.url" (in ${file}): must be an mqtt://, mqtts://, ws:// or wss:// URL`);
  });

  it('names unknown settings, invalid JSON and a missing file', () => {
    const dir = tempDir();
    const unknown = path.join(dir, 'unknown.json');
    writeFileSync(unknown, JSON.stringify({ databse: '/x' }));
    expect(() => loadConfig(['--config', unknown], home)).toThrow(/databse/);
    const broken = path.join(dir, 'broken.json');
    writeFileSync(broken, '{ "demo": tru');
    expect(() => loadConfig(['--config', broken], home)).toThrow(`config file ${broken} is not valid JSON`);
    expect(() => loadConfig(['--config', path.join(dir, 'nope.json')], home)).toThrow('config file not found');
  });

  it('names the environment variable that is wrong', () => {
    expect(() => loadConfig([], { ...home, NEUROWARD_PORT: '99999' })).toThrow('setting "host.port" (from environment variable NEUROWARD_PORT)');
    expect(() => loadConfig([], { ...home, NEUROWARD_DEMO: 'perhaps' })).toThrow('NEUROWARD_DEMO');
    expect(() => loadConfig([], { ...home, NEUROWARD_FHIR_SERVERS: 'not a url' })).toThrow('fhir.servers.0.baseUrl');
    expect(() => loadConfig([], { ...home, NEUROWARD_PASSPHRASE_SOURCE: 'env' })).toThrow('environment variable NEUROWARD_STORE_PASSPHRASE is empty or unset');
    expect(() => loadConfig([], { ...home, NEUROWARD_PASSPHRASE_SOURCE: 'file' })).toThrow('"store.passphrase.file": required');
  });

  it('reads the MQTT credentials and TLS files, and refuses half a client certificate or a missing password', () => {
    const dir = tempDir();
    const file = path.join(dir, 'mqtt.json');
    writeFileSync(file, JSON.stringify({ mqtt: { url: 'mqtts://broker.ward:8883', username: 'ws-4a', passwordEnv: 'WARD_MQTT_PASSWORD', caFile: '/etc/ca.pem', certFile: '/etc/c.pem', keyFile: '/etc/c.key' } }));
    const config = loadConfig(['--config', file], { ...home, WARD_MQTT_PASSWORD: 's3cret' });
    expect(config.mqtt).toEqual({ username: 'ws-4a', password: 's3cret', caFile: '/etc/ca.pem', certFile: '/etc/c.pem', keyFile: '/etc/c.key', keepaliveSeconds: 10 });
    expect(() => loadConfig(['--config', file], home)).toThrow('names environment variable WARD_MQTT_PASSWORD, which is empty or unset');
    writeFileSync(file, JSON.stringify({ mqtt: { certFile: '/etc/c.pem' } }));
    expect(() => loadConfig(['--config', file], home)).toThrow('"mqtt.certFile" and "mqtt.keyFile" go together');
  });
});
