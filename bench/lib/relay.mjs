#!/usr/bin/env node
// The floor of any Node.js proxy on this machine: a bare node:http relay that
// GETs `<upstream><path>` and pipes the body to the client. No auth, no hashing,
// no storage. bench/proxy.mjs measures a pull through it next to the pull
// through customs, so the report separates what customs adds from what moving
// bytes through a Node process costs at all.
// usage: node bench/lib/relay.mjs UPSTREAM_URL PORT
import { Agent, createServer, get } from 'node:http';

const [upstream, port] = process.argv.slice(2);
const agent = new Agent({ keepAlive: true });
createServer((req, res) => {
  get(`${upstream}${req.url}`, { agent }, (up) => {
    res.writeHead(up.statusCode ?? 502, { 'content-length': up.headers['content-length'] ?? 0 });
    up.pipe(res);
  }).on('error', () => res.destroy());
}).listen(Number(port), '127.0.0.1', () => process.stdout.write('listening\n'));
