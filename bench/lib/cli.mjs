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

/** Parses argv with the script's own options plus the common ones; prints `help` and exits on --help. */
export function benchOptions(own, help) {
  const { values } = parseArgs({ options: { ...COMMON, ...own } });
  if (values.help) {
    console.log(help);
    process.exit(0);
  }
  return values;
}
