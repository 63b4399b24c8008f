import { Option, type Command } from 'commander';
import { collect, DEFAULT_URL, runAction } from './common.js';
import { attachCommand, pullCommand, signCommand, type AttachCliOptions, type PullCliOptions, type SignCliOptions } from './pull.js';
import { pushDatasetCommand, pushModelCommand, type PushDatasetCliOptions, type PushModelCliOptions } from './push.js';
import { sbomPythonCommand, type SbomPythonCliOptions } from './sbom.js';

export { attachCommand, pullCommand, pushDatasetCommand, pushModelCommand, sbomPythonCommand, signCommand };

const urlOption = (): Option => new Option('--url <url>', 'customs server URL (token from CUSTOMS_TOKEN)').env('CUSTOMS_URL').default(DEFAULT_URL);

/** Adds the producer commands (push dataset|model, pull, attach, sbom python) to a commander program. */
export function register(program: Command): void {
  const push = program.command('push').description('package and push a dataset or a model as a ModelPack OCI artifact');

  push
    .command('dataset')
    .description('push a file or directory as a dataset artifact (one layer per file); prints <repo>@<digest>')
    .argument('<path>', 'file or directory')
    .requiredOption('--to <repo:tag>', 'destination')
    .option('--name <name>', 'dataset name (default: the repository)')
    .option('--version <version>', 'dataset version (default: the tag)')
    .option('--license <spdx>', 'license (repeatable)', collect)
    .option('--sign <key>', 'sign with this ECDSA P-256 PEM private key (customs keygen)')
    .option('--created <time>', 'creation time, RFC 3339 (default: SOURCE_DATE_EPOCH or now)')
    .option('--dvc', 'read the .dvc file or dvc.lock tracking <path>: check its md5, record md5 and git commit in the provenance')
    .option('--allow-dirty', 'with --dvc: accept a .dvc file or dvc.lock with uncommitted changes')
    .option('--builder-id <uri>', 'with --dvc: SLSA runDetails.builder.id of the provenance')
    .option('--json', 'print the result as JSON')
    .addOption(urlOption())
    .action(runAction((path: string, o: PushDatasetCliOptions) => pushDatasetCommand(path, o)));

  push
    .command('model')
    .description('push a model directory with provenance, SBOM and signature as referrers; prints <repo>@<digest>')
    .argument('[dir]', 'directory with the model files (default with --mlflow-run: the model the run logged)')
    .requiredOption('--to <repo:tag>', 'destination')
    .option('--mlflow-run <id|dir>', 'MLflow run (id in the local file store, or its directory): params, metrics, commit, datasets, flavour')
    .option('--mlflow-tracking-uri <uri>', 'MLflow file store for --mlflow-run (file:... or a path; default MLFLOW_TRACKING_URI, else ./mlruns)')
    .option('--mlflow-model <name|id>', 'which model of the run, when it logged several')
    .option('--mlflow-data-root <dir>', 'where relative MLflow dataset sources are found (repeatable; --code and the script directory are tried too)', collect)
    .option('--dataset <ref>', 'training dataset: <repo>:<tag>, <repo>@<digest> or a digest (repeatable)', collect)
    .option('--base-model <ref>', 'base model: <repo>:<tag>, <repo>@<digest> or a digest (repeatable)', collect)
    .option('--code <git dir>', 'git work tree (or a folder in one) of the training code: commit and subpath recorded in the provenance')
    .option('--allow-dirty', 'accept uncommitted changes and untracked files in --code (recorded in the provenance)')
    .option('--entry-point <path>', 'the script that ran, relative to --code, e.g. train.py (provenance externalParameters.entryPoint)')
    .option('--started <time>', 'when the training began, RFC 3339 (provenance startedOn; default: when this push began)')
    .option('--invocation-id <id>', 'id of the training run, e.g. a CI run URL (provenance invocationId; default: a new urn:uuid)')
    .option('--sign <key>', 'sign manifest, provenance and SBOM with this ECDSA P-256 PEM private key')
    .option('--sbom-python <python>', 'add every distribution installed for this Python interpreter to the SBOM')
    .option('--builder-id <uri>', 'SLSA runDetails.builder.id (default https://customs.dev/cli/local)')
    .option('--param <k=v>', 'training parameter, recorded as externalParameters (repeatable)', collect)
    .option('--name <name>', 'model name (default: last path segment of the repository)')
    .option('--version <version>', 'model version (default: the tag)')
    .option('--format <format>', 'model format, e.g. joblib, safetensors, onnx')
    .option('--license <spdx>', 'license (repeatable)', collect)
    .option('--author <author>', 'author (repeatable)', collect)
    .option('--vendor <vendor>', 'vendor')
    .option('--family <family>', 'model family')
    .option('--architecture <arch>', 'model architecture, e.g. isolation-forest')
    .option('--param-size <size>', 'parameter count, e.g. 8b')
    .option('--precision <precision>', 'e.g. float32')
    .option('--description <text>', 'description')
    .option('--task <task>', 'ML task for the SBOM model card, e.g. anomaly-detection')
    .option('--model-signature <file>', 'OpenSSF model signature of <dir> (model_signing sign ...), pushed as a referrer')
    .option('--created <time>', 'creation time, RFC 3339 (default: SOURCE_DATE_EPOCH or now)')
    .option('--json', 'print the result as JSON')
    .addOption(urlOption())
    .action(runAction((dir: string | undefined, o: PushModelCliOptions) => pushModelCommand(dir, o)));

  program
    .command('pull')
    .description('download an artifact the gate allows into a directory, verifying every file; resumes partial downloads')
    .argument('<ref>', '<repo>:<tag> or <repo>@<digest>')
    .argument('<dir>', 'target directory')
    .option('--model-signature <file>', 'also write the OpenSSF model signature the registry holds for it (for model_signing verify)')
    .option('--json', 'print the result as JSON')
    .addOption(urlOption())
    .action(runAction((ref: string, dir: string, o: PullCliOptions) => pullCommand(ref, dir, o)));

  program
    .command('attach')
    .description('attach an external SBOM, provenance or signature bundle to an artifact as a referrer')
    .argument('<ref>', '<repo>:<tag> or <repo>@<digest>')
    .option('--sbom <file>', 'CycloneDX or SPDX JSON SBOM')
    .option('--provenance <file>', 'in-toto statement, DSSE envelope or sigstore bundle')
    .option('--signature <file>', 'sigstore bundle (cosign --new-bundle-format)')
    .option('--created <time>', 'creation time, RFC 3339')
    .addOption(urlOption())
    .action(runAction((ref: string, o: AttachCliOptions) => attachCommand(ref, o)));

  program
    .command('sign')
    .description('sign what <ref> names (a cosign-style sigstore bundle by your key, pushed as a referrer); prints the signature digest')
    .argument('<ref>', '<repo>:<tag> or <repo>@<digest>')
    .requiredOption('--key <file>', 'ECDSA P-256 PEM private key (customs keygen)')
    .option('--created <time>', 'creation time, RFC 3339 (default: SOURCE_DATE_EPOCH or now)')
    .option('--json', 'print the result as JSON')
    .addOption(urlOption())
    .action(runAction((ref: string, o: SignCliOptions) => signCommand(ref, o)));

  const sbom = program.command('sbom').description('software bills of materials');
  sbom
    .command('python')
    .description('CycloneDX 1.6 SBOM of a Python environment, as its interpreter reports it')
    .option('--python <path>', 'interpreter', 'python3')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .addOption(new Option('--format <format>', 'cyclonedx (CycloneDX 1.6 JSON) or spdx (SPDX 2.3 JSON)').choices(['cyclonedx', 'spdx']).default('cyclonedx'))
    .action(runAction((o: SbomPythonCliOptions) => sbomPythonCommand(o)));
}
