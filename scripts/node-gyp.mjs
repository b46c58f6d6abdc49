// node-gyp for the project's native builds (scripts/build-native.mjs, scripts/rebuild-electron-native.mjs):
// which node-gyp to run, and where the running Node.js keeps its own headers.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** node-gyp's CLI script: the project's own (devDependency, locked), else the one npm runs install scripts with. */
export function nodeGypScript() {
  const require = createRequire(import.meta.url);
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    // fall through to npm's copy (an install with --omit=dev)
  }
  const candidates = [
    // npm exports the path of its bundled node-gyp to every lifecycle script.
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(path.dirname(process.execPath), 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((candidate) => candidate && existsSync(candidate)) ?? null;
}

/**
 * The install prefix of the running Node.js when it ships its own headers, i.e. a directory with
 * include/node/node_version.h of exactly this version and include/node/common.gypi: what node-gyp's
 * --nodedir wants. Standard Node installs have them beside the binary (<prefix>/bin/node and
 * <prefix>/include/node: Linux distribution and NodeSource packages, the official tarballs, nvm, fnm, Volta,
 * Homebrew, the macOS installer). Windows installs ship no headers (nor node.lib): null there, and node-gyp
 * then uses its own cache, downloading into it what is missing.
 */
export function localNodeHeaders() {
  if (process.platform === 'win32') return null;
  const candidates = [path.resolve(path.dirname(process.execPath), '..'), process.config.variables.node_prefix].filter(Boolean);
  for (const prefix of new Set(candidates)) {
    const include = path.join(prefix, 'include', 'node');
    try {
      if (!existsSync(path.join(include, 'common.gypi'))) continue;
      const header = readFileSync(path.join(include, 'node_version.h'), 'utf8');
      const part = (name) => header.match(new RegExp(`^#define\\s+NODE_${name}_VERSION\\s+(\\d+)`, 'm'))?.[1];
      if (`v${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}` === process.version) return prefix;
    } catch {
      // unreadable: not this one
    }
  }
  return null;
}
