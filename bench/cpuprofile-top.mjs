#!/usr/bin/env node
// Summarises V8 .cpuprofile files (from `node --cpu-prof`): the functions with the most self time, and the
// files with the most self time. Compiled dist/*.js locations are mapped back to src/*.ts:line through their
// source maps (tsc emits them); paths are shown relative to the checkout.
// Usage: node bench/cpuprofile-top.mjs [--top N] [--files] <profile.cpuprofile>...
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
let top = 25;
let byFile = false;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--top') top = Number(args[++i]);
  else if (args[i] === '--files') byFile = true;
  else files.push(args[i]);
}
if (files.length === 0) {
  console.error('usage: node bench/cpuprofile-top.mjs [--top N] [--files] <profile.cpuprofile>...');
  process.exit(2);
}

function shortPath(u) {
  u = u.replace(/^file:\/\//, '');
  return u.startsWith(root + '/') ? u.slice(root.length + 1) : u;
}

const maps = new Map();
function sourceMapFor(path) {
  if (!maps.has(path)) {
    let m = null;
    try {
      if (existsSync(path + '.map')) m = new SourceMap(JSON.parse(readFileSync(path + '.map', 'utf8')));
    } catch {
      m = null;
    }
    maps.set(path, m);
  }
  return maps.get(path);
}

/** `file:line` of a call frame (1-based line), mapped to the TypeScript source when a source map exists. */
function location(cf) {
  if (!cf.url) return { file: '', line: 0 };
  const path = cf.url.replace(/^file:\/\//, '');
  const m = path.endsWith('.js') ? sourceMapFor(path) : null;
  if (m) {
    const e = m.findEntry(cf.lineNumber, cf.columnNumber);
    if (e && e.originalSource) {
      const src = new URL(e.originalSource, 'file://' + path).pathname;
      return { file: shortPath(src), line: e.originalLine + 1 };
    }
  }
  return { file: shortPath(path), line: cf.lineNumber + 1 };
}

const selfByFn = new Map();
const selfByFile = new Map();
let total = 0;
for (const f of files) {
  const p = JSON.parse(readFileSync(f, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  // sample i lasted timeDeltas[i + 1] (the first delta is the start offset)
  const self = new Map();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0;
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + dt);
  }
  for (const [id, us] of self) {
    const n = byId.get(id);
    const cf = n.callFrame;
    const fn = cf.functionName || '(anonymous)';
    const loc = location(cf);
    const key = loc.file ? `${fn}  ${loc.file}:${loc.line}` : fn;
    selfByFn.set(key, (selfByFn.get(key) ?? 0) + us);
    const file = loc.file || `(${fn})`;
    selfByFile.set(file, (selfByFile.get(file) ?? 0) + us);
    total += us;
  }
}

const show = (m, title) => {
  console.log(`${title} (total ${(total / 1000).toFixed(1)} ms)`);
  for (const [k, us] of [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(us / 1000).toFixed(1).padStart(9)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`);
  }
};
show(selfByFn, 'Self time by function');
if (byFile) {
  console.log('');
  show(selfByFile, 'Self time by file');
}
