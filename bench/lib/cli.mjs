import { parseArgs } from 'node:util';

/** Options every bench script takes; each script adds its own. */
const COMMON = {
  'customs-arg': { type: 'string', multiple: true, default: [] },
  'customs-node-arg': { type: 'string', multiple: true, default: [] },
  build: { type: 'boolean', default: false },
  json: { type: 'string' },
  keep: { type: 'boolean', default: false },
  'wait-idle': { type: 'string', default: '0' },
  help: { type: 'boolean', default: false },
};

const COMMON_HELP = `common options:
  --customs-arg ARG   extra argument for 'customs serve' (repeatable)
  --customs-node-arg=ARG  argument for customs's node, e.g. --cpu-prof (repeatable)
  --build             compile the current src/ into node_modules/.cache/customs-bench and run that (dist/ untouched)
  --json FILE         also write the JSON summary to FILE
  --keep              keep temp dirs (logs, data) for inspection
  --wait-idle SECS    wait up to SECS for the CPUs to be idle (<10% busy) before starting`;

/** Parses argv with the script's own options plus the common ones; prints `help` (and the common options') and exits on --help. */
export function benchOptions(own, help) {
  const { values } = parseArgs({ options: { ...COMMON, ...own } });
  if (values.help) {
    console.log(`${help}\n${COMMON_HELP}`);
    process.exit(0);
  }
  return values;
}
