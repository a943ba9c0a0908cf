// Build the web client: copy src/ (chat and admin) into dist/, the official Socket.IO client
// (from node_modules, installed by `npm ci`) into dist/vendor/, and the mini-program web-view
// bridge (sdk/js/bridge.js) into dist/vendor/. No bundler: the pages are plain ES modules.
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, "src");
const dist = join(here, "dist");
const client = join(here, "node_modules", "socket.io-client", "dist", "socket.io.esm.min.js");
const bridge = join(here, "..", "..", "sdk", "js", "bridge.js");

if (!existsSync(client)) {
  console.error("socket.io-client is not installed: run `npm ci` in gateway/web first");
  process.exit(1);
}
rmSync(dist, { recursive: true, force: true });
cpSync(src, dist, { recursive: true });
mkdirSync(join(dist, "vendor"), { recursive: true });
cpSync(client, join(dist, "vendor", "socket.io.esm.min.js"));
cpSync(bridge, join(dist, "vendor", "bridge.js"));
console.log(`built ${dist}`);
