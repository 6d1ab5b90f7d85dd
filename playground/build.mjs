// Bundles src/ into ../cnndsl/serve/static/app.js, stamped with a digest of the sources and the
// lockfile, which tests/test_serve.py compares: a change to src/ without a rebuild fails the suite.
// The licences of the bundled packages go beside it, in THIRD-PARTY-LICENSES.txt.
import {build} from "esbuild";
import {createHash} from "node:crypto";
import {existsSync, readFileSync, readdirSync, writeFileSync} from "node:fs";

const inputs = ["package-lock.json", ...readdirSync("src").sort().map((f) => `src/${f}`)];
const digest = createHash("sha256");
for (const file of inputs) digest.update(readFileSync(file));
const out = "../cnndsl/serve/static/app.js";
const result = await build({entryPoints: ["src/main.js"], bundle: true, minify: true, format: "iife",
                            target: "es2020", outfile: out, legalComments: "none", logLevel: "warning",
                            metafile: true});
const stamp = `/* cnndsl playground, built by playground/build.mjs from sources sha256:${digest.digest("hex")};` +
              ` bundled packages and their licences: THIRD-PARTY-LICENSES.txt */\n`;
writeFileSync(out, stamp + readFileSync(out, "utf8"));

const packages = new Set();
for (const file of Object.keys(result.metafile.inputs)) {
  const match = file.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (match) packages.add(match[1]);
}
const notices = [...packages].sort().map((name) => {
  const dir = `node_modules/${name}`;
  const {version} = JSON.parse(readFileSync(`${dir}/package.json`, "utf8"));
  const licence = ["LICENSE", "LICENSE.md", "LICENSE.txt"].map((f) => `${dir}/${f}`).find(existsSync);
  if (!licence) throw new Error(`${name} ships no licence file`);
  return `${name} ${version}\n${"=".repeat(name.length + version.length + 1)}\n${readFileSync(licence, "utf8").trim()}\n`;
});
writeFileSync("../cnndsl/serve/static/THIRD-PARTY-LICENSES.txt",
              "The playground's script (app.js) bundles these packages, under these licences.\n\n" + notices.join("\n"));
console.log(`wrote ${out} (${packages.size} packages bundled)`);
