#!/usr/bin/env node
// Compiles contracts/src/*.sol with the pinned npm `solc` (solcjs 0.8.30) and writes deterministic
// artifacts to adapters/evm/artifacts/<Contract>.json.
//   node scripts/compile-contracts.mjs          write artifacts
//   node scripts/compile-contracts.mjs --check  compile to memory; exit 1 naming every artifact that differs
// Reproducible: fixed source unit names ("src/<File>.sol"), fixed settings, no metadata hash in bytecode.
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const solc = require("solc");

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SRC = join(ROOT, "contracts", "src");
const OUT = join(ROOT, "adapters", "evm", "artifacts");
const COMPILER = "0.8.30";
const VIA_IR = false; // the legacy pipeline compiles these contracts; keep it unless "stack too deep" forces IR

function fail(message) {
  process.stderr.write(`compile-contracts: ${message}\n`);
  process.exit(2);
}

const version = solc.version();
if (!version.startsWith(`${COMPILER}+`)) fail(`expected solc ${COMPILER}, the npm package is ${version} (run npm ci)`);

const files = readdirSync(SRC).filter((f) => f.endsWith(".sol")).sort();
if (files.length === 0) fail(`no .sol files in ${SRC}`);
const sources = {};
const texts = {};
for (const file of files) {
  const content = readFileSync(join(SRC, file), "utf8");
  texts[file] = content;
  sources[`src/${file}`] = { content };
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    viaIR: VIA_IR,
    metadata: { bytecodeHash: "none", appendCBOR: false },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) {
  if (e.severity !== "error") process.stderr.write(`${e.formattedMessage || e.message}\n`);
}
if (errors.length > 0) {
  for (const e of errors) process.stderr.write(`${e.formattedMessage || e.message}\n`);
  fail(`${errors.length} compile error(s)`);
}

const artifacts = {};
for (const file of files) {
  const contracts = output.contracts[`src/${file}`] || {};
  const libraries = new Set([...texts[file].matchAll(/^\s*library\s+(\w+)/gm)].map((m) => m[1]));
  for (const name of Object.keys(contracts).sort()) {
    const c = contracts[name];
    const bytecode = c.evm.bytecode.object;
    if (!bytecode || libraries.has(name)) continue; // interfaces, abstract contracts, inlined libraries
    if (artifacts[name]) fail(`contract name ${name} defined twice`);
    const artifact = {
      contractName: name,
      abi: c.abi,
      bytecode: `0x${bytecode}`,
      deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
      compiler: COMPILER,
      sourceHash: createHash("sha256").update(texts[file], "utf8").digest("hex"),
    };
    artifacts[name] = `${JSON.stringify(artifact, null, 2)}\n`;
  }
}

const check = process.argv.includes("--check");
if (check) {
  const differing = [];
  for (const [name, text] of Object.entries(artifacts)) {
    const path = join(OUT, `${name}.json`);
    if (!existsSync(path) || readFileSync(path, "utf8") !== text) differing.push(name);
  }
  if (existsSync(OUT)) {
    for (const f of readdirSync(OUT).sort()) {
      if (f.endsWith(".json") && !(f.slice(0, -5) in artifacts)) differing.push(`${f.slice(0, -5)} (no such contract)`);
    }
  }
  if (differing.length > 0) {
    process.stderr.write(
      `artifacts out of date with contracts/src: ${differing.join(", ")} (run node scripts/compile-contracts.mjs)\n`,
    );
    process.exit(1);
  }
  process.stdout.write(`${Object.keys(artifacts).length} artifacts match a fresh solc ${COMPILER} compile\n`);
} else {
  mkdirSync(OUT, { recursive: true });
  for (const [name, text] of Object.entries(artifacts)) writeFileSync(join(OUT, `${name}.json`), text);
  process.stdout.write(`wrote ${Object.keys(artifacts).length} artifacts to adapters/evm/artifacts: ${Object.keys(artifacts).join(", ")}\n`);
}
