/**
 * YAML reading for `diaspora-ctl forward --config` (diaspora-ctl.md §8.1) and durations (forwarding.md §2).
 *
 * The `yaml` package parses with the failsafe schema (every scalar stays text) and this module types the scalars
 * itself, following yaml-cpp for plain scalars while keeping quoted scalars strings:
 *
 * | Scalar                                                         | Result                                     |
 * |----------------------------------------------------------------|--------------------------------------------|
 * | quoted (`'…'`, `"…"`), block (`|`, `>`), or tagged `!!str` / `!` | string                                   |
 * | plain `~`, `null`, `Null`, `NULL`, empty                         | null                                      |
 * | plain `true/false/yes/no/on/off`, also `True`…, `TRUE`…          | boolean                                   |
 * | plain `[-+]?[0-9]+`                                            | integer (bigint beyond ±(2^53−1), as JSON) |
 * | plain decimal float (`1.5`, `.5`, `1.`, `-2.5e3`, `1e5`)         | number (string if it overflows to ±∞)     |
 * | any other plain scalar (`0x10`, `.inf`, `y`, `5s`, …)            | string                                    |
 *
 * Other tags (`!!int`, custom tags) are ignored: the scalar is typed by its style. Anchors and aliases are resolved
 * (copies, not shared objects); the merge key `<<` is an ordinary key, as in yaml-cpp. Mapping keys are the text of
 * a scalar; collection keys and duplicate keys are errors. A stream with several documents is an error; an empty
 * document gives null.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, type Node, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import { DiasporaError, ErrorCodes } from '../api/errors.js';
import { type Json, type JsonObject, dumpCompact, integerFromLiteral, setMember } from '../api/json.js';
import { MAX_TIMER_MS } from '../api/timers.js';

const NULLS = new Set(['', '~', 'null', 'Null', 'NULL']);
const BOOLS = new Map<string, boolean>();
for (const [t, f] of [
  ['true', 'false'],
  ['yes', 'no'],
  ['on', 'off'],
]) {
  for (const [word, value] of [
    [t as string, true],
    [f as string, false],
  ] as const) {
    BOOLS.set(word, value);
    BOOLS.set(word[0]!.toUpperCase() + word.slice(1), value);
    BOOLS.set(word.toUpperCase(), value);
  }
}
const INTEGER = /^[-+]?[0-9]+$/;
const FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
const STR_TAGS = new Set(['tag:yaml.org,2002:str', '!']);
/** Upper bound on produced values, against alias bombs ("billion laughs"). */
const MAX_NODES = 1_000_000;

/** Types the text of a PLAIN YAML scalar as yaml-cpp would (see the module comment). */
export function typePlainScalar(text: string): Json {
  if (NULLS.has(text)) return null;
  const b = BOOLS.get(text);
  if (b !== undefined) return b;
  if (INTEGER.test(text)) return integerFromLiteral(text.startsWith('+') ? text.slice(1) : text);
  if (FLOAT.test(text)) {
    const n = Number(text);
    if (Number.isFinite(n)) return n;
  }
  return text;
}

function yamlError(detail: string): DiasporaError {
  return new DiasporaError(`Failed to parse YAML config: ${detail}`, { code: ErrorCodes.CONFIG });
}

/**
 * Parses the text of a forward configuration into plain JSON values. `sourceName` (usually the file path) prefixes
 * the position in error messages.
 *
 * Errors: DiasporaError (code CONFIG) `Failed to parse YAML config: <sourceName>:<line>:<column>: <problem>`
 * (1-based line and column), e.g. `Failed to parse YAML config: fwd.yaml:3:1: Map keys must be unique`.
 */
export function parseForwardYaml(text: string, sourceName: string): Json {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    schema: 'failsafe',
    merge: false,
    uniqueKeys: true,
    prettyErrors: false,
    strict: true,
    lineCounter: lines,
  });
  const fail = (offset: number, problem: string): never => {
    const { line, col } = lines.linePos(offset);
    throw yamlError(`${sourceName}:${line}:${col}: ${problem}`);
  };
  const first = doc.errors[0];
  if (first !== undefined) {
    fail(first.pos[0], first.code === 'MULTIPLE_DOCS' ? 'Expected a single YAML document' : first.message);
  }
  return new Converter(fail).convert(doc.contents);
}

/** Keys whose values are read as their text whatever their YAML type (diaspora-ctl.md §8.1): `type: on` is "on". */
const TEXT_KEYS = new Set(['type', 'from', 'to', 'data_selector', 'data_allocator']);

class Converter {
  private readonly anchors = new Map<string, Node>();
  private readonly active = new Set<Node>();
  private expanding = 0;
  private count = 0;
  /** Offset of the outermost alias being expanded. */
  private site = 0;

  constructor(private readonly fail: (offset: number, problem: string) => never) {}

  private offset(node: { range?: readonly number[] | null | undefined }): number {
    return node.range?.[0] ?? 0;
  }

  private resolve(node: unknown): Node | null {
    if (!isAlias(node)) return node as Node | null;
    const target = this.anchors.get(node.source);
    if (target === undefined) return this.fail(this.offset(node), `Unresolved alias: ${node.source}`);
    if (this.active.has(target)) return this.fail(this.offset(node), `Recursive alias: ${node.source}`);
    return target;
  }

  convert(raw: unknown, asText = false): Json {
    if (raw === null || raw === undefined) return null;
    const aliased = isAlias(raw);
    const node = this.resolve(raw);
    if (node === null) return null;
    if (aliased && this.expanding === 0) this.site = this.offset(raw as Node);
    if (++this.count > MAX_NODES) {
      // Report the outermost alias being expanded, not a node inside the anchored original.
      this.fail(this.expanding > 0 || aliased ? this.site : this.offset(node), 'Excessive alias expansion');
    }
    // Anchors are registered in document order, but not while re-reading an anchored node for an alias (that
    // would bring back definitions that later anchors replaced).
    if (aliased) this.expanding++;
    else if (this.expanding === 0 && (node as { anchor?: string }).anchor) {
      this.anchors.set((node as { anchor: string }).anchor, node);
    }
    this.active.add(node);
    try {
      return this.convertNode(node, asText);
    } finally {
      this.active.delete(node);
      if (aliased) this.expanding--;
    }
  }

  private convertNode(node: Node, asText: boolean): Json {
    if (isScalar(node)) {
      const text = typeof node.value === 'string' ? node.value : String(node.value ?? '');
      if (node.type !== 'PLAIN' || (node.tag !== undefined && STR_TAGS.has(node.tag))) return text;
      const typed = typePlainScalar(text);
      // text keys keep the written text (`type: on` is "on"), but a null (`~`, empty) stays missing
      return asText && typed !== null ? text : typed;
    }
    if (isSeq(node)) return node.items.map((item) => this.convert(item, asText));
    if (isMap(node)) {
      const out: JsonObject = {};
      const seen = new Set<string>();
      for (const pair of node.items) {
        const keyNode = pair.key as unknown;
        const key = this.keyText(keyNode);
        if (seen.has(key)) this.fail(this.offset((keyNode ?? node) as Node), 'Map keys must be unique');
        seen.add(key);
        setMember(out, key, this.convert(pair.value, TEXT_KEYS.has(key)));
      }
      return out;
    }
    return this.fail(this.offset(node), 'Unsupported YAML node');
  }

  private keyText(raw: unknown): string {
    if (raw === null || raw === undefined) return '';
    const node = this.resolve(raw);
    if (node === null) return '';
    if (isScalar(node)) {
      if (!isAlias(raw) && this.expanding === 0 && node.anchor) this.anchors.set(node.anchor, node);
      return typeof node.value === 'string' ? node.value : String(node.value ?? '');
    }
    return this.fail(this.offset(raw as Node), 'Mapping keys must be scalars');
  }
}

const SYSTEM_ERRORS: Record<string, string> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  ELOOP: 'Too many levels of symbolic links',
};

/**
 * Reads and parses a forward configuration file. Unreadable file → DiasporaError `Failed to parse YAML config:
 * cannot read <path>: <reason>` (e.g. `No such file or directory`); parse errors as {@link parseForwardYaml}.
 */
export function loadForwardYamlFile(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason = (e.code !== undefined ? SYSTEM_ERRORS[e.code] : undefined) ?? e.message;
    throw yamlError(`cannot read ${path}: ${reason}`);
  }
  return parseForwardYaml(text, path);
}

const DURATION = /^(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A duration in milliseconds (forwarding.md §2): a string `<number><unit>` with unit `ms`, `s`, `m` or `h` and a
 * non-negative decimal number (`250ms`, `1.5s`, `.5m`; rounded to the nearest millisecond), or a non-negative
 * integer of milliseconds. Anything else (negative, non-integer number, bigint, unit-less or spaced string, …) →
 * DiasporaError (code CONFIG) `Invalid duration for <what>: <v>`, `<v>` being a string as is, other values as
 * compact JSON. Durations end up in timers: above 2147483647 ms (~24.8 days) →
 * `Invalid duration for <what>: <v> (at most 2147483647 ms)`.
 */
export function parseDuration(v: Json, what: string): number {
  const ms = durationMs(v);
  const shown = typeof v === 'string' ? v : dumpCompact(v);
  if (ms === undefined) throw new DiasporaError(`Invalid duration for ${what}: ${shown}`, { code: ErrorCodes.CONFIG });
  if (ms > MAX_TIMER_MS) throw new DiasporaError(`Invalid duration for ${what}: ${shown} (at most ${MAX_TIMER_MS} ms)`, { code: ErrorCodes.CONFIG });
  return ms;
}

function durationMs(v: Json): number | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v + 0; // -0 → 0
  if (typeof v !== 'string') return undefined;
  const m = DURATION.exec(v);
  if (m === null) return undefined;
  const ms = Math.round(Number(m[1]) * (UNIT_MS[m[2] as string] as number));
  return Number.isSafeInteger(ms) ? ms : undefined;
}
