import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { configSchema, type Config } from './schema.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Reads a YAML (or JSON) config file, validates it, and deep-freezes the result.
 * Errors name the file, line and path of each bad value.
 */
export async function loadConfigFile(file: string | undefined): Promise<Config> {
  return (await loadConfig(file)).config;
}

/** The config and its source text, so slices validated by other layers' schemas can report lines too. */
export interface LoadedConfig {
  readonly config: Config;
  readonly text: string;
  readonly file: string;
}

export async function loadConfig(file: string | undefined): Promise<LoadedConfig> {
  if (!file) return { config: freeze(configSchema.parse({})), text: '', file: '<defaults>' };
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new ConfigError(`cannot read config file ${file}: ${e.code ?? e.message}`);
  });
  return { config: parseConfigText(text, file), text, file };
}

/**
 * Validates one slice of the config (`policy`, `upstreams`) with the schema of the
 * layer that owns it, reporting file:line:col like the root schema does.
 */
export function parseSliceAt<T extends z.ZodType>(loaded: LoadedConfig, schema: T, key: string, value: unknown): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data as z.infer<T>;
  const lineCounter = new LineCounter();
  const doc = parseDocument(loaded.text, { lineCounter });
  const lines = result.error.issues.map((issue) => {
    const path = [key, ...(issue.path as (string | number)[])];
    return `${loaded.file}${locate(doc, lineCounter, path)}: ${path.join('.')}: ${issue.message}`;
  });
  throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
}

export function parseConfigText(text: string, file = '<config>'): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(`${file}: invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
  }
  const raw = doc.toJS() ?? {};
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const where = locate(doc, lineCounter, issue.path as (string | number)[]);
      return `${file}${where}: ${issue.path.join('.') || '(root)'}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  return freeze(result.data);
}

/** Validates a slice with its own schema, reporting paths relative to the config root. */
export function parseSlice<T extends z.ZodType>(schema: T, value: unknown, path: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new ConfigError(
      `invalid configuration:\n  ${result.error.issues.map((i) => `${[path, ...i.path].join('.')}: ${i.message}`).join('\n  ')}`,
    );
  }
  return freeze(result.data);
}

function locate(doc: ReturnType<typeof parseDocument>, lc: LineCounter, path: (string | number)[]): string {
  // The deepest node on the path that exists is where the problem is.
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
    if (node && typeof node === 'object' && node.range) {
      const { line, col } = lc.linePos(node.range[0]);
      return `:${line}:${col}`;
    }
  }
  return '';
}

export function freeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) freeze(v);
  }
  return value;
}
