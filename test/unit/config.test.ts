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
    expect(config.fhirServers).toMatchObject([{ name: 'regional', baseUrl: 'https://fhir.example.org/r4', auth: { kind: 'none' }, resourceTypes: '*', bundleType: 'batch', maxBundleEntries: 100 }]);
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

  describe('FHIR servers (the sync engine\'s settings)', () => {
    const write = (servers: unknown): string => {
      const file = path.join(tempDir(), 'site.json');
      writeFileSync(file, JSON.stringify({ fhir: { servers } }));
      return file;
    };

    it('takes the engine settings: routing, auth with secrets read at start, bundle settings', () => {
      const file = write([
        { name: 'hospital', baseUrl: 'https://fhir.hospital.example/r4/', auth: { kind: 'basic', username: 'ward4', passwordEnv: 'HOSPITAL_FHIR_PASSWORD' }, bundleType: 'transaction', maxBundleEntries: 50 },
        { name: 'registry', baseUrl: 'https://registry.example/fhir', resourceTypes: ['Patient', 'Encounter'] },
      ]);
      const config = loadConfig(['--config', file], { ...home, HOSPITAL_FHIR_PASSWORD: 's3cret' });
      expect(config.fhirServers).toMatchObject([
        // The trailing slash is dropped, the password read from its variable.
        { name: 'hospital', baseUrl: 'https://fhir.hospital.example/r4', auth: { kind: 'basic', username: 'ward4', password: 's3cret' }, bundleType: 'transaction', maxBundleEntries: 50 },
        { name: 'registry', resourceTypes: ['Patient', 'Encounter'], auth: { kind: 'none' }, bundleType: 'batch', maxBundleEntries: 100 },
      ]);
    });

    it('reads an older file\'s tokenEnv as bearer auth', () => {
      const file = write([{ name: 'legacy', baseUrl: 'https://old.example/fhir', tokenEnv: 'LEGACY_FHIR_TOKEN' }]);
      expect(loadConfig(['--config', file], { ...home, LEGACY_FHIR_TOKEN: 'tok-123' }).fhirServers[0]!.auth).toEqual({ kind: 'bearer', token: 'tok-123' });
      // tokenEnv beside an auth setting is ambiguous: refused, naming the server.
      const both = write([{ name: 'legacy', baseUrl: 'https://old.example/fhir', tokenEnv: 'LEGACY_FHIR_TOKEN', auth: { kind: 'none' } }]);
      expect(() => loadConfig(['--config', both], { ...home, LEGACY_FHIR_TOKEN: 'tok-123' })).toThrow(/FHIR server "legacy".*tokenEnv/);
    });

    it('stops the start with an error naming the server when a setting or a secret is wrong', () => {
      const badUrl = write([{ name: 'ok', baseUrl: 'https://ok.example/fhir' }, { name: 'typo', baseUrl: 'htp:/typo' }]);
      expect(() => loadConfig(['--config', badUrl], home)).toThrow(`setting "fhir.servers.1.baseUrl" (in ${badUrl}, FHIR server "typo"): must be an http(s) URL`);
      const noToken = write([{ name: 'hospital', baseUrl: 'https://fhir.example/r4', tokenEnv: 'MISSING_FHIR_TOKEN' }]);
      expect(() => loadConfig(['--config', noToken], home)).toThrow('FHIR server "hospital": environment variable MISSING_FHIR_TOKEN (bearer token) is empty');
      const twice = write([{ name: 'same', baseUrl: 'https://a.example/fhir' }, { name: 'same', baseUrl: 'https://b.example/fhir' }]);
      expect(() => loadConfig(['--config', twice], home)).toThrow('FHIR server name "same" is used twice');
      const noCa = write([{ name: 'tls', baseUrl: 'https://fhir.example/r4', tls: { caFile: '/nonexistent/ca.pem' } }]);
      expect(() => loadConfig(['--config', noCa], home)).toThrow('FHIR server "tls": cannot read the CA file /nonexistent/ca.pem');
    });

    it('takes NEUROWARD_FHIR_SERVERS as URLs or name=URL pairs, over the file', () => {
      expect(loadConfig([], { ...home, NEUROWARD_FHIR_SERVERS: 'https://a.example/fhir, https://b.example/fhir' }).fhirServers.map((s) => [s.name, s.baseUrl])).toEqual([
        ['server-1', 'https://a.example/fhir'],
        ['server-2', 'https://b.example/fhir'],
      ]);
      const file = write([{ name: 'from-file', baseUrl: 'https://file.example/fhir' }]);
      expect(loadConfig(['--config', file], { ...home, NEUROWARD_FHIR_SERVERS: 'hospital=http://127.0.0.1:8103/fhir/R4' }).fhirServers.map((s) => [s.name, s.baseUrl])).toEqual([
        ['hospital', 'http://127.0.0.1:8103/fhir/R4'],
      ]);
      expect(() => loadConfig([], { ...home, NEUROWARD_FHIR_SERVERS: 'hospital=not a url' })).toThrow('setting "fhir.servers.0.baseUrl" (from environment variable NEUROWARD_FHIR_SERVERS, FHIR server "hospital")');
    });
  });
});
