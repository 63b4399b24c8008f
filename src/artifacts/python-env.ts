import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { z } from 'zod';
import { err } from '../oci/index.js';

const run = promisify(execFile);

/**
 * The distributions installed in a Python environment, as that interpreter sees them
 * (importlib.metadata over its own sys.path): nothing is guessed from directory names.
 * A distribution's hash is that of its RECORD file (PEP 376/627), which names every
 * installed file with its own sha256; its dependencies are its Requires-Dist entries whose
 * environment markers hold in this interpreter (evaluated by `packaging`, else pip's copy).
 */
const INVENTORY_SCRIPT = String.raw`
import hashlib, json, platform, re, sys
import importlib.metadata as md
try:
    from packaging.requirements import Requirement
except Exception:
    try:
        from pip._vendor.packaging.requirements import Requirement
    except Exception:
        Requirement = None

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

def needed(spec):
    # The distribution a Requires-Dist line names, when it applies to this environment without extras.
    if Requirement is not None:
        try:
            r = Requirement(spec)
        except Exception:
            return None
        if r.marker is not None:
            try:
                if not r.marker.evaluate({"extra": ""}):
                    return None
            except Exception:
                return None
        return norm(r.name)
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    if not m or (";" in spec and "extra" in spec.split(";", 1)[1]):
        return None
    return norm(m.group(1))

def record_sha256(d):
    path = getattr(d, "_path", None)
    try:
        if path is not None and (path / "RECORD").is_file():
            return hashlib.sha256((path / "RECORD").read_bytes()).hexdigest()
    except Exception:
        pass
    text = d.read_text("RECORD")
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text is not None else None

out = {"python": {"version": platform.python_version(), "implementation": platform.python_implementation(), "executable": sys.executable}, "distributions": []}
seen = set()
for d in md.distributions():
    meta = d.metadata
    name = meta["Name"]
    if not name:
        continue
    key = (norm(name), d.version)
    if key in seen:
        continue  # the same distribution visible twice on sys.path
    seen.add(key)
    lic = meta.get("License")
    if lic and ("\n" in lic.strip() or len(lic) > 200):
        lic = None  # the whole license text pasted into the field: not an identifier
    classifiers = [c.split(" :: ")[-1] for c in (meta.get_all("Classifier") or []) if c.startswith("License ::")]
    requires = sorted({n for n in (needed(r) for r in (d.requires or [])) if n and n != key[0]})
    out["distributions"].append({
        "name": name, "version": d.version,
        "licenseExpression": meta.get("License-Expression"), "license": lic, "classifiers": classifiers,
        "summary": meta.get("Summary"), "homepage": meta.get("Home-page"),
        "recordSha256": record_sha256(d), "requires": requires,
    })
out["distributions"].sort(key=lambda x: (norm(x["name"]), x["version"]))
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
      /** sha256 (hex) of the distribution's RECORD file, which lists every installed file with its hash. */
      recordSha256: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
      /** PEP 503 names of the Requires-Dist entries that apply here (markers true, no extras). */
      requires: z.array(z.string()),
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
