// The generated API types must be what openapi-typescript makes of the
// committed deploy/openapi.json: `npm run gen:api` after the API changes.
import { readFileSync, rmSync } from "node:fs";

const [committed, fresh] = process.argv.slice(2);
const same = readFileSync(committed, "utf8") === readFileSync(fresh, "utf8");
rmSync(fresh);
if (!same) {
  console.error(`${committed} is out of date with deploy/openapi.json: run \`npm --prefix console run gen:api\``);
  process.exit(1);
}
console.log(`${committed} is up to date`);
