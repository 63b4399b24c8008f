#!/usr/bin/env node
// Entry point of `customs` / `npx customs`: runs the compiled CLI (npm run build writes dist/).
import { main } from '../dist/cli/main.js';

await main(process.argv);
