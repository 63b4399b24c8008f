import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { scanModelLayer } from '../../src/verify/model-scan.js';
import { venvTool } from '../helpers/tools.js';

/**
 * Threat: a model file that runs code when it is loaded (pickle, joblib, torch.load, np.load) is
 * served because the scanner can be evaded, or the scanner is so noisy on real models that
 * operators switch it off. Rule (docs/security-model-scanner.md): exact allow-listed globals only;
 * every pickle in a stream to its end; zips by their central directory, every entry, one archive;
 * joblib's compressed containers decompressed and scanned; object arrays in .npy/.npz scanned;
 * unparseable bytes denied with their offset; safetensors headers validated.
 *
 * The corpus is made here by test/security/model-corpus.py with Debian's python3 and the pinned
 * venv: each malicious file is checked there to reach its payload under the loader it targets.
 */
interface Item {
  file: string;
  kind: 'malicious' | 'benign';
  threat: string;
  expect: string;
}

const DIR = mkdtempSync(join(tmpdir(), 'customs-corpus-'));
const SCRIPT = join(import.meta.dirname, 'model-corpus.py');
execFileSync('/usr/bin/python3', [SCRIPT, DIR, 'debian'], { stdio: ['ignore', 'ignore', 'inherit'] });
execFileSync(venvTool('python'), [SCRIPT, DIR, 'venv'], { stdio: ['ignore', 'ignore', 'inherit'] });
const CORPUS: Item[] = readFileSync(join(DIR, 'corpus.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as Item);
const malicious = CORPUS.filter((c) => c.kind === 'malicious');
const benign = CORPUS.filter((c) => c.kind === 'benign');

/** 997-byte chunks: every opcode, header and descriptor can straddle a chunk boundary. */
const chunks = (b: Buffer, n = 997): Readable => Readable.from(Array.from({ length: Math.ceil(b.length / n) }, (_, i) => b.subarray(i * n, i * n + n)));
const scan = (file: string) => scanModelLayer(chunks(readFileSync(join(DIR, file))), file);

describe('model scanner corpus', () => {
  it('has at least 20 malicious files and 10 benign real models', () => {
    expect(malicious.length).toBeGreaterThanOrEqual(20);
    expect(benign.length).toBeGreaterThanOrEqual(10);
  });
  describe.each(malicious)('denies $file ($threat)', ({ file, expect: want }) => {
    it('with the expected reason', async () => {
      const r = await scan(file);
      expect(r.problems.length, file).toBeGreaterThan(0);
      expect(r.problems.join('\n')).toMatch(new RegExp(want));
    });
  });
  describe.each(benign)('allows $file ($threat)', ({ file }) => {
    it('with no finding', async () => {
      expect((await scan(file)).problems).toEqual([]);
    });
  });
});

/**
 * The same corpus through picklescan, modelscan and fickling from the pinned venv. Each tool's
 * verdict: deny when it exits non-zero for "found something" (picklescan 1, modelscan 1, fickling
 * non-zero), allow when it exits 0 (modelscan 3: no supported file), error otherwise. The files
 * where a tool and customs differ are listed in DISAGREEMENTS with the reason customs is right, so
 * a change on either side is noticed.
 */
type Verdict = 'deny' | 'allow' | 'error';
function tool(name: string, args: string[]): Verdict {
  try {
    execFileSync(venvTool(name), args, { stdio: 'ignore', timeout: 60_000 });
    return 'allow';
  } catch (e) {
    const code = (e as { status?: number }).status;
    if (name === 'modelscan') return code === 1 ? 'deny' : code === 3 ? 'allow' : 'error';
    return code === 1 || (name === 'fickling' && code !== undefined && code !== 0) ? 'deny' : 'error';
  }
}

export const DISAGREEMENTS: Record<string, Partial<Record<'picklescan' | 'modelscan' | 'fickling', Verdict>>> = {};

describe('customs against picklescan, modelscan and fickling on the same corpus', () => {
  it('disagrees only where DISAGREEMENTS says, and there customs is right', async () => {
    const found: typeof DISAGREEMENTS = {};
    for (const c of CORPUS) {
      const path = join(DIR, c.file);
      const customs: Verdict = (await scan(c.file)).problems.length > 0 ? 'deny' : 'allow';
      expect(customs, c.file).toBe(c.kind === 'malicious' ? 'deny' : 'allow');
      const verdicts = {
        picklescan: tool('picklescan', ['-p', path]),
        modelscan: tool('modelscan', ['-p', path]),
        fickling: tool('fickling', ['--check-safety', path]),
      };
      for (const [t, v] of Object.entries(verdicts)) if (v !== customs) (found[c.file] ??= {})[t as keyof typeof verdicts] = v;
    }
    console.log(JSON.stringify(found, null, 1));
    expect(found).toEqual(DISAGREEMENTS);
  });
});
