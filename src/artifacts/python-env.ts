import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { z } from 'zod';
import { err } from '../oci/index.js';

const run = promisify(execFile);

/**
 * The distributions installed in a Python environment, as that interpreter sees them
 * (importlib.metadata over its own sys.path): nothing is guessed from directory names.
 * File hashes come from each distribution's RECORD (PEP 376/627) when it has one;
 * RECORD stores urlsafe-base64 sha256 digests, converted to hex here.
 */
const INVENTORY_SCRIPT = String.raw`
import base64, json, platform, re, sys
import importlib.metadata as md
out = {"python": {"version": platform.python_version(), "implementation": platform.python_implementation(), "executable": sys.executable}, "distributions": []}
seen = set()
for d in md.distributions():
    meta = d.metadata
    name = meta["Name"]
    if not name:
        continue
    key = (re.sub(r"[-_.]+", "-", name).lower(), d.version)
    if key in seen:
        continue  # the same distribution visible twice on sys.path
    seen.add(key)
    lic = meta.get("License")
    if lic and ("\n" in lic.strip() or len(lic) > 200):
        lic = None  # the whole license text pasted into the field: not an identifier
    classifiers = [c.split(" :: ")[-1] for c in (meta.get_all("Classifier") or []) if c.startswith("License ::")]
    files = []
    has_record = d.read_text("RECORD") is not None
    if has_record:
        for f in d.files or []:
            h = f.hash
            if h is not None and h.mode == "sha256":
                if re.fullmatch(r"[0-9a-f]{64}", h.value):
                    files.append([str(f), h.value])  # some Debian packages write hex, not PEP 376's base64
                    continue
                raw = base64.urlsafe_b64decode(h.value + "=" * (-len(h.value) % 4))
                if len(raw) == 32:
                    files.append([str(f), raw.hex()])
    out["distributions"].append({
        "name": name, "version": d.version,
        "licenseExpression": meta.get("License-Expression"), "license": lic, "classifiers": classifiers,
        "summary": meta.get("Summary"), "homepage": meta.get("Home-page"),
        "hasRecord": has_record, "files": files,
    })
out["distributions"].sort(key=lambda x: (x["name"].lower(), x["version"]))
json.dump(out, sys.stdout)
`;

const inventorySchema = z.object({
  python: z.object({ version: z.string(), implementation: z.string(), executable: z.string() }),
  distributions: z.array(
    z.object({
      name: z.string(),
      version: z.string(),
      licenseExpression: z.string().nullish(),
      license: z.string().nullish(),
      classifiers: z.array(z.string()),
      summary: z.string().nullish(),
      homepage: z.string().nullish(),
      hasRecord: z.boolean(),
      files: z.array(z.tuple([z.string(), z.string()])),
    }),
  ),
});
export type PythonInventory = z.infer<typeof inventorySchema>;
export type PythonDistribution = PythonInventory['distributions'][number];

/** Runs `python` with an inline script and parses what it reports. */
export async function inspectPython(python: string): Promise<PythonInventory> {
  let stdout: string;
  try {
    // The user's environment variables are kept (PYTHONPATH may be part of the training environment);
    // the working directory is not, since `-c` puts it on sys.path.
    ({ stdout } = await run(python, ['-c', INVENTORY_SCRIPT], { cwd: tmpdir(), maxBuffer: 256 * 1024 * 1024, env: { ...process.env, PYTHONIOENCODING: 'utf-8' } }));
  } catch (e) {
    const x = e as { code?: string; stderr?: string; message: string };
    throw err('NAME_UNKNOWN', `cannot inspect Python environment ${python}: ${x.code === 'ENOENT' ? 'no such interpreter' : (x.stderr ?? x.message).trim().split('\n').pop()}`);
  }
  return inventorySchema.parse(JSON.parse(stdout));
}

/** PEP 503 normalisation (the name pip and indexes compare). */
export const normalizePypiName = (name: string): string => name.replace(/[-_.]+/g, '-').toLowerCase();

/** The purl spec's pypi rule: lower case, `_` -> `-`, dots kept (`pkg:pypi/ruamel.yaml`), as packageurl-python and cyclonedx-py write it. */
export const pypiPurl = (name: string, version: string): string => `pkg:pypi/${encodeURIComponent(name.toLowerCase().replace(/_/g, '-'))}@${encodeURIComponent(version)}`;
