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
 * verdict: deny when it exits 1 ("found something"), allow when it exits 0 (modelscan also 3: no
 * supported file), error otherwise (picklescan 2, modelscan 2, fickling 2: could not parse). The files
 * where a tool and customs differ are listed in DISAGREEMENTS with the reason customs is right, so
 * a change on either side is noticed.
 */
type Verdict = 'deny' | 'allow' | 'error';
function tool(name: string, args: string[]): Verdict {
  try {
    execFileSync(venvTool(name), args, { stdio: 'ignore', timeout: 60_000, cwd: DIR }); // fickling writes safety_results.json into its cwd
    return 'allow';
  } catch (e) {
    const code = (e as { status?: number }).status;
    if (name === 'modelscan') return code === 1 ? 'deny' : code === 3 ? 'allow' : 'error';
    return code === 1 ? 'deny' : 'error'; // picklescan 2: a parse error; fickling 2: failed to parse
  }
}

const DISAGREEMENTS: Record<string, Partial<Record<'picklescan' | 'modelscan' | 'fickling', Verdict>>> = {
  // Malicious files a tool lets through (allow) or cannot read (error); customs denies each.
  // modelscan misses commands.check_output (protocol 2 writes subprocess under its Python 2 name)
  'classic-subprocess.pkl': { modelscan: 'allow' },
  // modelscan's list has no pydoc; pydoc.pipepager runs a shell command
  'classic-pydoc.pkl': { modelscan: 'allow' },
  // importlib.import_module is on neither tool's list; customs allows only listed pairs
  'classic-importlib.pkl': { picklescan: 'allow', modelscan: 'allow' },
  // fickling does not read torch.save's zip; customs reads data.pkl by the central directory
  'torch-reduce-chain.pt': { fickling: 'error' },
  // torch.storage._load_from_bytes is a nested torch.load the tools do not list
  'torch-load-from-bytes.pt': { picklescan: 'allow', modelscan: 'allow', fickling: 'error' },
  // the tools trust sklearn.* (or do not list this callable); customs allows exact pairs
  'evasion-allowed-package-callable.pkl': { picklescan: 'allow', modelscan: 'allow' },
  // the tools match 'sklearn' as a module; Python resolves sklearn + os.system to os.system
  'evasion-dotted-stack-global.pkl': { picklescan: 'allow', modelscan: 'allow' },
  // fickling does not read zips
  'evasion-zip-appended-archive.pt': { fickling: 'error' },
  // fickling does not read zips
  'evasion-zip-hidden-entry.pt': { fickling: 'error' },
  // modelscan trusts local headers (scans nothing named .pkl); fickling does not read zips
  'evasion-zip-local-name.pt': { modelscan: 'allow', fickling: 'error' },
  // the tools do not decompress joblib's containers
  'joblib-zlib-evil.joblib.z': { picklescan: 'allow', modelscan: 'allow', fickling: 'error' },
  // the tools do not decompress joblib's containers
  'joblib-gzip-evil.joblib.gz': { picklescan: 'allow', modelscan: 'allow', fickling: 'error' },
  // the tools do not decompress joblib's containers
  'joblib-bz2-evil.joblib.bz2': { picklescan: 'allow', modelscan: 'allow', fickling: 'error' },
  // the tools do not decompress joblib's containers (fickling denies it only because the bytes do not parse)
  'joblib-lzma-evil.joblib.lzma': { picklescan: 'allow', modelscan: 'allow' },
  // the tools do not decompress joblib's containers
  'joblib-xz-evil.joblib.xz': { picklescan: 'allow', modelscan: 'allow', fickling: 'error' },
  // modelscan skips .npy; an object array is a pickle np.load(allow_pickle=True) runs
  'numpy-object-evil.npy': { modelscan: 'allow' },
  // modelscan skips the .npy entries of an .npz; fickling does not read zips
  'numpy-object-evil.npz': { modelscan: 'allow', fickling: 'error' },
  // the tools stop before the pickle after a legacy torch file's storages
  'torch-legacy-trailing-pickle.pt': { picklescan: 'allow', modelscan: 'allow' },
  // the tools pass what they cannot parse; customs denies it with the offset
  'pickle-unknown-opcode.pkl': { picklescan: 'allow', modelscan: 'allow' },
  // the tools pass what they cannot parse; customs denies it
  'pickle-truncated.pkl': { picklescan: 'allow', modelscan: 'allow' },
  // EXT opcodes call through copyreg's registry; the tools do not flag them
  'pickle-ext-opcode.pkl': { picklescan: 'allow', modelscan: 'allow' },
  // the tools do not validate safetensors headers
  'safetensors-overlap.safetensors': { picklescan: 'allow', modelscan: 'allow', fickling: 'error' },
  // the tools do not validate safetensors headers
  'safetensors-size-mismatch.safetensors': { picklescan: 'allow', modelscan: 'allow', fickling: 'error' },
  // the tools do not validate safetensors headers
  'safetensors-bad-dtype.safetensors': { picklescan: 'allow', modelscan: 'allow', fickling: 'error' },
  // the tools do not validate safetensors headers
  'safetensors-huge-header.safetensors': { picklescan: 'allow', modelscan: 'allow', fickling: 'error' },
  // the tools do not validate safetensors headers
  'safetensors-trailing.safetensors': { picklescan: 'allow', modelscan: 'allow', fickling: 'error' },
  // Benign real models a tool denies or cannot parse; customs allows each. fickling flags every import
  // outside its own short list (so all of scikit-learn, NumPy, XGBoost, LightGBM) and cannot read zips,
  // compressed joblib files, tars or safetensors; picklescan stops at joblib's raw array bytes.
  'sklearn-logreg.pkl': { fickling: 'deny' },
  'sklearn-pipeline.joblib': { picklescan: 'error', fickling: 'deny' },
  'sklearn-pipeline.joblib.z': { fickling: 'error' },
  'sklearn-pipeline.joblib.gz': { fickling: 'error' },
  'sklearn-pipeline.joblib.bz2': { fickling: 'error' },
  'sklearn-pipeline.joblib.lzma': { fickling: 'deny' },
  'sklearn-pipeline.joblib.xz': { fickling: 'error' },
  'sklearn-gbc-p2.pkl': { fickling: 'deny' },
  'sklearn-hgb-p0.pkl': { fickling: 'deny' },
  'joblib-unaligned-arrays.joblib': { picklescan: 'error', fickling: 'deny' },
  'sklearn-onehot-objects.joblib': { picklescan: 'error', fickling: 'deny' },
  'numpy-float32.npy': { fickling: 'deny' },
  'numpy-structured.npy': { fickling: 'deny' },
  'numpy-object-strings.npy': { fickling: 'deny' },
  'numpy-arrays.npz': { fickling: 'error' },
  'torch-state-dict.pt': { fickling: 'error' },
  'torch-module.pt': { fickling: 'error' },
  'torch-state-dict-prefix.pt': { fickling: 'error' },
  'torch-state-dict-legacy.pt': { fickling: 'deny' },
  'modelpack-layer.tar': { fickling: 'error' },
  'modelpack-layer.tar.gz': { fickling: 'error' },
  'sklearn19-hgb.joblib': { fickling: 'error' },
  'xgboost-classifier.joblib': { fickling: 'deny' },
  'lightgbm-classifier.pkl': { fickling: 'deny' },
  'model.safetensors': { fickling: 'error' },
};

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
    expect(found).toEqual(DISAGREEMENTS);
  }, 600_000); // three Python tools start once per file
});
